// kernel::time arithmetic against fake hardware timers: exact, drift-free uptime at awkward rates.
#include <catch2/catch.hpp>

#include <limits>

#include "arch/cpu.h"
#include "arch/timer.h"
#include "support/host_panic.h"
#include "time/time.h"

namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;
constexpr uint64_t kPitHz = 1193182;

// A timer whose period is whatever the test says; ticks are delivered by calling fire().
class FakeTimer final : public arch::HardwareTimer {
public:
    enum class Model { ExactHz, Pit, IntegerNs };

    explicit FakeTimer(Model model) : m_model(model) { }

    const char* name() const override { return "fake"; }
    bool start_periodic(uint32_t hz, void (*on_tick)()) override
    {
        if (hz < min_hz() || hz > max_hz())
            return false;
        m_hz = hz;
        m_on_tick = on_tick;
        ++m_starts;
        return true;
    }
    uint64_t tick_period_ns() const override
    {
        const arch::TickPeriod p = tick_period();
        return (p.numerator_ns + p.denominator / 2) / p.denominator;
    }
    arch::TickPeriod tick_period() const override
    {
        switch (m_model) {
        case Model::ExactHz: return {kNsPerSecond, m_hz};
        case Model::Pit: return {pit_divisor(m_hz) * kNsPerSecond, kPitHz};
        case Model::IntegerNs: return {kNsPerSecond / m_hz, 1};
        }
        return {};
    }
    uint32_t min_hz() const override { return 19; }
    uint32_t max_hz() const override { return 100000; }

    void fire(uint64_t n = 1)
    {
        for (uint64_t i = 0; i < n; ++i)
            m_on_tick();
    }

    static uint64_t pit_divisor(uint64_t hz) { return (kPitHz + hz / 2) / hz; }
    int starts() const { return m_starts; }

private:
    Model m_model;
    uint64_t m_hz = 0;
    void (*m_on_tick)() = nullptr;
    int m_starts = 0;
};

// A timer that refuses every rate.
class BrokenTimer final : public arch::HardwareTimer {
public:
    const char* name() const override { return "broken"; }
    bool start_periodic(uint32_t, void (*)()) override { return false; }
    uint64_t tick_period_ns() const override { return 0; }
    uint32_t min_hz() const override { return 50; }
    uint32_t max_hz() const override { return 60; }
};

uint64_t exact_floor(uint64_t ticks, arch::TickPeriod p)
{
    return static_cast<uint64_t>(static_cast<unsigned __int128>(ticks) * p.numerator_ns / p.denominator);
}

} // namespace

TEST_CASE("time: no drift over a million ticks at awkward rates", "[time]")
{
    const auto model = GENERATE(FakeTimer::Model::ExactHz, FakeTimer::Model::Pit, FakeTimer::Model::IntegerNs);
    const uint32_t hz = GENERATE(19u, 100u, 250u, 1000u, 10000u);
    CAPTURE(static_cast<int>(model), hz);

    FakeTimer timer(model);
    kernel::time::init(timer, hz);
    REQUIRE(kernel::time::initialized());
    REQUIRE(kernel::time::hz() == hz);
    REQUIRE(kernel::time::ticks() == 0);
    REQUIRE(kernel::time::uptime_ns() == 0);
    const arch::TickPeriod period = timer.tick_period();
    REQUIRE(kernel::time::tick_period_ns() == timer.tick_period_ns());

    const uint64_t floor_step = period.numerator_ns / period.denominator;
    const uint64_t ceil_step = floor_step + (period.numerator_ns % period.denominator != 0);
    uint64_t previous = 0;
    bool steps_ok = true;
    constexpr uint64_t kTicks = 1'000'000;
    for (uint64_t n = 1; n <= kTicks; ++n) {
        timer.fire();
        const uint64_t now = kernel::time::uptime_ns();
        const uint64_t step = now - previous;
        steps_ok = steps_ok && now >= previous && (step == floor_step || step == ceil_step);
        previous = now;
    }
    CHECK(steps_ok);
    CHECK(kernel::time::ticks() == kTicks);
    CHECK(kernel::time::uptime_ns() == exact_floor(kTicks, period));
    CHECK(kernel::time::ticks_to_ns(kTicks) == kernel::time::uptime_ns());

    if (model == FakeTimer::Model::ExactHz) {
        // hz ticks are exactly one second, however badly 1e9 / hz divides.
        kernel::time::init(timer, hz);
        timer.fire(uint64_t(hz) * 7);
        CHECK(kernel::time::uptime_ns() == 7 * kNsPerSecond);
    }
}

TEST_CASE("time: PIT-like period keeps the fraction a rounded period would lose", "[time]")
{
    FakeTimer timer(FakeTimer::Model::Pit);
    kernel::time::init(timer, 1000);
    // divisor 1193: 999847.47 ns per tick.
    CHECK(kernel::time::tick_period_ns() == 999847);
    timer.fire(1'000'000);
    const uint64_t exact = kernel::time::uptime_ns();
    CHECK(exact == uint64_t(1193) * kNsPerSecond * 1'000'000 / kPitHz);
    // Accumulating the rounded period would be ~0.47 ms off after these 1000 s.
    CHECK(exact - 999847ull * 1'000'000 == 466'689);
}

TEST_CASE("time: conversions", "[time]")
{
    FakeTimer timer(FakeTimer::Model::Pit);
    kernel::time::init(timer, 1000);
    CHECK(kernel::time::ticks_to_ns(0) == 0);
    CHECK(kernel::time::ticks_to_ns(1) == 999847);
    CHECK(kernel::time::ns_to_ticks(0) == 0);
    CHECK(kernel::time::ns_to_ticks(1) == 1);
    CHECK(kernel::time::ns_to_ticks(999847) == 1);
    CHECK(kernel::time::ns_to_ticks(999848) == 2);
    CHECK(kernel::time::ns_to_ticks(kNsPerSecond) == 1001); // the PIT runs 0.015% fast at 1000 Hz

    for (uint64_t ns : {uint64_t(1), uint64_t(12345), kNsPerSecond, 3600 * kNsPerSecond, uint64_t(1) << 62}) {
        const uint64_t t = kernel::time::ns_to_ticks(ns);
        CAPTURE(ns, t);
        CHECK(kernel::time::ticks_to_ns(t) >= ns);
        CHECK(kernel::time::ticks_to_ns(t - 1) < ns);
    }
    // Saturates instead of wrapping.
    CHECK(kernel::time::ticks_to_ns(std::numeric_limits<uint64_t>::max()) == std::numeric_limits<uint64_t>::max());
}

TEST_CASE("time: tick callback runs once per tick, after the count", "[time]")
{
    FakeTimer timer(FakeTimer::Model::ExactHz);
    kernel::time::init(timer, 250);
    static uint64_t calls;
    static uint64_t ticks_seen;
    calls = 0;
    ticks_seen = 0;
    const auto callback = +[] {
        ++calls;
        ticks_seen = kernel::time::ticks();
    };
    REQUIRE(kernel::time::set_tick_callback(callback) == nullptr);
    timer.fire(10);
    CHECK(calls == 10);
    CHECK(ticks_seen == 10);
    CHECK(kernel::time::set_tick_callback(nullptr) == callback);
    timer.fire(3);
    CHECK(calls == 10);
    CHECK(kernel::time::ticks() == 13);
}

TEST_CASE("time: init keeps the caller's interrupt state", "[time]")
{
    FakeTimer timer(FakeTimer::Model::ExactHz);
    arch::interrupts_enable();
    kernel::time::init(timer, 100);
    CHECK(arch::interrupts_enabled());
    arch::interrupts_disable();
    kernel::time::init(timer, 100);
    CHECK_FALSE(arch::interrupts_enabled());
    CHECK(timer.starts() == 2);
}

TEST_CASE("time: an unsupported rate panics with the supported range", "[time]")
{
    BrokenTimer broken;
    try {
        kernel::time::init(broken, 1000);
        FAIL("init returned");
    } catch (const kernel::HostPanic& panic) {
        CHECK(std::string(panic.what()) == "broken timer cannot tick at 1000 Hz (it supports 50..60 Hz)");
    }
    CHECK_FALSE(kernel::time::initialized());
    CHECK(kernel::time::hz() == 0);

    FakeTimer timer(FakeTimer::Model::ExactHz);
    REQUIRE_THROWS_AS(kernel::time::init(timer, 0), kernel::HostPanic);
    REQUIRE_THROWS_AS(kernel::time::init(timer, 5), kernel::HostPanic);
}

TEST_CASE("time: Clock validates and reduces its period", "[time]")
{
    kernel::time::Clock clock;
    CHECK_FALSE(clock.configured());
    clock.tick(); // ignored while unconfigured
    CHECK(clock.ticks() == 0);
    CHECK_FALSE(clock.configure(0, 1));
    CHECK_FALSE(clock.configure(1, 0));
    CHECK_FALSE(clock.configure(1, 1ull << 32)); // coprime, denominator too large
    REQUIRE(clock.configure(uint64_t(1193) * kNsPerSecond, kPitHz));
    CHECK(clock.period_numerator() == uint64_t(1193) * kNsPerSecond / 2);
    CHECK(clock.period_denominator() == kPitHz / 2);
    REQUIRE(clock.configure(3ull << 40, 1ull << 40)); // reduces to 3/1
    CHECK(clock.period_denominator() == 1);
    clock.tick();
    clock.tick();
    CHECK(clock.uptime_ns() == 6);
    clock.reset();
    CHECK_FALSE(clock.configured());
    CHECK(clock.uptime_ns() == 0);
}

TEST_CASE("time: mul_div", "[time]")
{
    using kernel::time::mul_div;
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    uint64_t rem = 0;
    CHECK(mul_div(10, 20, 7, &rem) == 28);
    CHECK(rem == 4);
    CHECK(mul_div(kMax, kMax, kMax, &rem) == kMax);
    CHECK(rem == 0);
    CHECK(mul_div(kMax, 2, 3) == static_cast<uint64_t>((static_cast<unsigned __int128>(kMax) * 2) / 3));
    CHECK(mul_div(1ull << 63, 4, 2) == kMax); // quotient needs 65 bits: saturates
    CHECK(mul_div(5, 5, 0) == kMax);
    // Divisors above 2^63 exercise the carry path of the long division.
    const uint64_t big = (1ull << 63) + 12345;
    const uint64_t b = (1ull << 63) + 5;
    const unsigned __int128 product = static_cast<unsigned __int128>(kMax - 7) * b;
    CHECK(mul_div(kMax - 7, b, big, &rem) == static_cast<uint64_t>(product / big));
    CHECK(rem == static_cast<uint64_t>(product % big));
}
