#pragma once
// Generic periodic hardware timer. Only arch code and time/time.cpp see this interface: the
// Loom of Fate and everything else read time through kernel::time, never through a device.
#include <stdint.h>

namespace arch {

// The exact tick period as a fraction: numerator_ns / denominator nanoseconds. Hardware periods are
// rarely whole nanoseconds (the PIT at 1000 Hz ticks every 999847.47 ns), so an integer period
// would drift; kernel::time accumulates this fraction exactly instead.
struct TickPeriod {
    uint64_t numerator_ns = 0;
    uint64_t denominator = 1;
};

struct HardwareTimer {
    virtual const char* name() const = 0;
    // Programs the timer to call `on_tick` from its interrupt handler (interrupts disabled) about
    // `hz` times per second. Returns false, changing nothing, if the rate is out of range.
    virtual bool start_periodic(uint32_t hz, void (*on_tick)()) = 0;
    // The real period of the running timer (not 1e9 / hz), rounded to the nearest nanosecond.
    virtual uint64_t tick_period_ns() const = 0;
    // The same period exactly. Timers whose period is a whole number of ns need not override this.
    virtual TickPeriod tick_period() const { return TickPeriod{tick_period_ns(), 1}; }
    // The range of rates start_periodic accepts.
    virtual uint32_t min_hz() const = 0;
    virtual uint32_t max_hz() const = 0;

protected:
    // Timers are static objects, never deleted through this interface.
    ~HardwareTimer() = default;
};

// The timer the Heartwood ticks from (the PIT on x86_64). Kernel only: not defined on the host.
HardwareTimer& system_timer();

} // namespace arch
