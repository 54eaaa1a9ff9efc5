#pragma once
// The 8253/8254 Programmable Interval Timer, channel 0 in mode 2 (rate generator) on IRQ 0: the
// Heartwood's first system timer, behind the generic arch::HardwareTimer.
#include <stdint.h>

#include "arch/timer.h"

namespace arch {

class Pit final : public HardwareTimer {
public:
    // The PIT input clock, 14.31818 MHz / 12, to the usual integer approximation.
    static constexpr uint32_t kBaseFrequencyHz = 1193182;
    static constexpr uint32_t kMinDivisor = 2;     // a count of 1 is illegal in mode 2
    static constexpr uint32_t kMaxDivisor = 65536; // programmed as 0

    constexpr Pit() = default;

    const char* name() const override { return "PIT"; }
    bool start_periodic(uint32_t hz, void (*on_tick)()) override;
    uint64_t tick_period_ns() const override;
    TickPeriod tick_period() const override;
    uint32_t min_hz() const override { return (kBaseFrequencyHz + kMaxDivisor - 1) / kMaxDivisor; }
    uint32_t max_hz() const override { return kBaseFrequencyHz / kMinDivisor; }

    // The reload value for `hz` (nearest), or 0 if `hz` is out of range.
    static constexpr uint32_t divisor_for(uint32_t hz)
    {
        if (hz == 0 || hz > kBaseFrequencyHz / kMinDivisor)
            return 0;
        const uint64_t divisor = (static_cast<uint64_t>(kBaseFrequencyHz) + hz / 2) / hz;
        return divisor >= kMinDivisor && divisor <= kMaxDivisor ? static_cast<uint32_t>(divisor) : 0;
    }

    // 0 until started.
    uint32_t divisor() const { return m_divisor; }

    // Channel 0 status via the read-back command: bits 1-3 operating mode, 4-5 access mode.
    static uint8_t read_status();
    // Channel 0's current count (latched); counts down from the divisor in mode 2.
    static uint16_t read_count();

    void handle_tick();

private:
    uint32_t m_divisor = 0;
    void (*m_on_tick)() = nullptr;
};

static_assert(Pit::divisor_for(1000) == 1193);
static_assert(Pit::divisor_for(19) == 62799 && Pit::divisor_for(18) == 0);

Pit& pit();

} // namespace arch
