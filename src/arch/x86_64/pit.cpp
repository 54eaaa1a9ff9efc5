#include "arch/x86_64/pit.h"

#include "arch/cpu.h"
#include "arch/x86_64/interrupts.h"
#include "arch/x86_64/io.h"

namespace arch {

namespace {

constexpr uint16_t kChannel0Data = 0x40;
constexpr uint16_t kCommand = 0x43;
constexpr uint8_t kIrq = 0;

// Command byte: channel 0 (bits 6-7 = 00), lobyte/hibyte access (11), mode 2 (010), binary (0).
constexpr uint8_t kChannel0Mode2 = 0x34;
// Latch the count of channel 0 (access bits 00).
constexpr uint8_t kLatchChannel0 = 0x00;
// Read-back (11), don't latch count (bit 5), latch status (bit 4 clear), channel 0 (bit 1).
constexpr uint8_t kReadBackStatusChannel0 = 0xe2;

constinit Pit g_pit;

void on_irq0(InterruptFrame&) { g_pit.handle_tick(); }

} // namespace

bool Pit::start_periodic(uint32_t hz, void (*on_tick)())
{
    const uint32_t divisor = divisor_for(hz);
    if (divisor == 0 || on_tick == nullptr)
        return false;

    InterruptGuard guard;
    m_divisor = divisor;
    m_on_tick = on_tick;
    outb(kCommand, kChannel0Mode2);
    // 65536 is written as 0.
    outb(kChannel0Data, static_cast<uint8_t>(divisor & 0xff));
    outb(kChannel0Data, static_cast<uint8_t>((divisor >> 8) & 0xff));
    if (!register_irq_handler(kIrq, &on_irq0)) {
        m_on_tick = nullptr;
        return false;
    }
    return true;
}

// period = divisor / 1193182 s = divisor * 1e9 / 1193182 ns.
uint64_t Pit::tick_period_ns() const
{
    const uint64_t numerator = static_cast<uint64_t>(m_divisor) * 1'000'000'000;
    return (numerator + kBaseFrequencyHz / 2) / kBaseFrequencyHz;
}

TickPeriod Pit::tick_period() const
{
    return TickPeriod{static_cast<uint64_t>(m_divisor) * 1'000'000'000, kBaseFrequencyHz};
}

uint8_t Pit::read_status()
{
    InterruptGuard guard;
    outb(kCommand, kReadBackStatusChannel0);
    return inb(kChannel0Data);
}

uint16_t Pit::read_count()
{
    InterruptGuard guard;
    outb(kCommand, kLatchChannel0);
    const uint8_t low = inb(kChannel0Data);
    const uint8_t high = inb(kChannel0Data);
    return static_cast<uint16_t>(low | (high << 8));
}

void Pit::handle_tick()
{
    if (m_on_tick != nullptr)
        m_on_tick();
}

Pit& pit() { return g_pit; }

HardwareTimer& system_timer() { return g_pit; }

} // namespace arch
