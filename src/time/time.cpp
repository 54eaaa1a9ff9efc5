#include "time/time.h"

#include "arch/cpu.h"
#include "arch/timer.h"
#include "lib/panic.h"

namespace kernel::time {

namespace {

uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b != 0) {
        const uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

constinit Clock g_clock;
constinit std::atomic<uint32_t> g_hz{0};
constinit std::atomic<TickCallback> g_tick_callback{nullptr};

void on_timer_tick()
{
    if (!g_clock.configured())
        return; // a timer left running by a failed init
    g_clock.tick();
    if (TickCallback callback = g_tick_callback.load(std::memory_order_acquire))
        callback();
}

} // namespace

bool Clock::configure(uint64_t numerator_ns, uint64_t denominator)
{
    if (numerator_ns == 0 || denominator == 0)
        return false;
    const uint64_t divisor = gcd(numerator_ns, denominator);
    numerator_ns /= divisor;
    denominator /= divisor;
    if (denominator >= (1ull << 32))
        return false;
    m_numerator = numerator_ns;
    m_denominator = denominator;
    m_whole_ns = numerator_ns / denominator;
    m_remainder = numerator_ns % denominator;
    m_fraction = 0;
    m_ticks.store(0, std::memory_order_release);
    m_ns.store(0, std::memory_order_release);
    return true;
}

void Clock::reset()
{
    m_numerator = 0;
    m_denominator = 1;
    m_whole_ns = 0;
    m_remainder = 0;
    m_fraction = 0;
    m_ticks.store(0, std::memory_order_release);
    m_ns.store(0, std::memory_order_release);
}

void Clock::tick()
{
    if (!configured())
        return;
    uint64_t ns = m_ns.load(std::memory_order_relaxed) + m_whole_ns;
    m_fraction += m_remainder;
    if (m_fraction >= m_denominator) {
        m_fraction -= m_denominator;
        ++ns;
    }
    // Single writer: plain load + store, no locked read-modify-write needed.
    m_ns.store(ns, std::memory_order_release);
    m_ticks.store(m_ticks.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

uint64_t Clock::period_ns_rounded() const
{
    if (!configured())
        return 0;
    return m_whole_ns + (m_remainder * 2 >= m_denominator ? 1 : 0);
}

uint64_t Clock::ticks_to_ns(uint64_t ticks) const
{
    if (!configured())
        return 0;
    return mul_div(ticks, m_numerator, m_denominator);
}

uint64_t Clock::ns_to_ticks(uint64_t ns) const
{
    if (!configured())
        return 0;
    uint64_t remainder = 0;
    const uint64_t ticks = mul_div(ns, m_denominator, m_numerator, &remainder);
    if (ticks == UINT64_MAX)
        return UINT64_MAX;
    return ticks + (remainder != 0 ? 1 : 0);
}

void init(arch::HardwareTimer& timer, uint32_t hz)
{
    {
        // No tick may be counted before the clock knows the period the timer actually chose.
        arch::InterruptGuard guard;
        g_hz.store(0, std::memory_order_relaxed);
        g_clock.reset();
        if (timer.start_periodic(hz, &on_timer_tick)) {
            const arch::TickPeriod period = timer.tick_period();
            if (g_clock.configure(period.numerator_ns, period.denominator)) {
                g_hz.store(hz, std::memory_order_release);
                return;
            }
            panic("{} timer reports an unusable tick period {}/{} ns", timer.name(), period.numerator_ns,
                  period.denominator);
        }
    }
    panic("{} timer cannot tick at {} Hz (it supports {}..{} Hz)", timer.name(), hz, timer.min_hz(), timer.max_hz());
}

bool initialized() { return g_hz.load(std::memory_order_acquire) != 0; }
uint64_t ticks() { return g_clock.ticks(); }
uint64_t uptime_ns() { return g_clock.uptime_ns(); }
uint32_t hz() { return g_hz.load(std::memory_order_acquire); }
uint64_t tick_period_ns() { return g_clock.period_ns_rounded(); }
uint64_t ticks_to_ns(uint64_t ticks) { return g_clock.ticks_to_ns(ticks); }
uint64_t ns_to_ticks(uint64_t ns) { return g_clock.ns_to_ticks(ns); }

TickCallback set_tick_callback(TickCallback callback)
{
    return g_tick_callback.exchange(callback, std::memory_order_acq_rel);
}

} // namespace kernel::time
