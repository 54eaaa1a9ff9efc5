#pragma once
// Kernel time, counted in ticks of the system timer. This is the only time interface generic code
// (and the Loom of Fate) uses; which device ticks is arch's business.
//
// Uptime is kept exactly: the timer's period is an exact fraction of a nanosecond
// (arch::TickPeriod), and each tick adds its whole part and carries the remainder, so after n ticks
// uptime_ns() == floor(n * period) with no accumulated rounding drift.
#include <atomic>
#include <stdint.h>

#include "lib/math.h"

namespace arch {
struct HardwareTimer;
}

namespace kernel::time {

// Starts `timer` at `hz` and counts its ticks from zero. Panics if the timer rejects the rate.
// The kernel calls this once (a second call restarts the clock at zero; the host tests rely on that).
void init(arch::HardwareTimer& timer, uint32_t hz);

bool initialized();
// Ticks since init.
uint64_t ticks();
// Nanoseconds since init; monotonic, advances once per tick.
uint64_t uptime_ns();
// The rate asked for at init (the hardware's real rate may differ slightly; see tick_period_ns).
uint32_t hz();
// The real tick period rounded to the nearest nanosecond.
uint64_t tick_period_ns();
// Exact conversions with the real period: floor(ticks * period), and the number of ticks needed
// for at least `ns` to pass (rounded up). Both saturate at UINT64_MAX.
uint64_t ticks_to_ns(uint64_t ticks);
uint64_t ns_to_ticks(uint64_t ns);

// Called from the timer interrupt after each tick is counted (interrupts disabled). One listener:
// the Loom of Fate. Returns the previous callback.
using TickCallback = void (*)();
TickCallback set_tick_callback(TickCallback callback);

// The arithmetic behind the functions above, as a value type so tests can drive private instances.
class Clock {
public:
    constexpr Clock() = default;

    // Period = numerator_ns / denominator ns. Requires numerator_ns > 0 and 0 < denominator < 2^32
    // (which keeps every intermediate product within 64 bits). Resets the count to zero.
    bool configure(uint64_t numerator_ns, uint64_t denominator);
    bool configured() const { return m_numerator != 0; }
    // Back to unconfigured, zero ticks.
    void reset();

    // Counts one tick (ignored while unconfigured). Only one context (the timer interrupt) may call this.
    void tick();

    uint64_t ticks() const { return m_ticks.load(std::memory_order_acquire); }
    uint64_t uptime_ns() const { return m_ns.load(std::memory_order_acquire); }
    uint64_t period_ns_rounded() const;
    uint64_t ticks_to_ns(uint64_t ticks) const;
    uint64_t ns_to_ticks(uint64_t ns) const;
    // The period in lowest terms.
    uint64_t period_numerator() const { return m_numerator; }
    uint64_t period_denominator() const { return m_denominator; }

private:
    std::atomic<uint64_t> m_ticks{0};
    std::atomic<uint64_t> m_ns{0};
    uint64_t m_fraction = 0; // ns carried between ticks, in units of 1/m_denominator; < m_denominator
    uint64_t m_numerator = 0;
    uint64_t m_denominator = 1;
    uint64_t m_whole_ns = 0;  // m_numerator / m_denominator
    uint64_t m_remainder = 0; // m_numerator % m_denominator
};

// The clock's arithmetic, for its users' convenience (lib/math.h).
using lib::mul_div;

} // namespace kernel::time
