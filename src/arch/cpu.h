#pragma once
// The generic CPU interface. Generic code (lib, kernel, mm, sched, sync) reaches the processor only
// through these; src/arch/x86_64/cpu.cpp implements them for the Heartwood and src/arch/host/cpu.cpp
// for the host tests.
#include <stdint.h>

#if defined(__AETHELOS_KERNEL__)
#include "arch/x86_64/cpu_inline.h"
#endif

namespace arch {

// Local interrupt flag (IF on x86_64). On the host it is a per-thread flag that starts disabled,
// like a CPU out of reset. The kernel's bodies are inline (arch/x86_64/cpu_inline.h, included
// below); the host's live in src/arch/host/cpu.cpp.
#if !defined(__AETHELOS_KERNEL__)
bool interrupts_enabled();
void interrupts_disable();
void interrupts_enable();
#endif

// Enables interrupts and sleeps until one arrives, with no window in between in which a wake-up
// could be lost (x86_64: `sti; hlt`). Interrupts stay enabled afterwards.
void wait_for_interrupt();

// Spin-wait hint (x86_64: `pause`).
void cpu_relax();

// Stops this CPU for good with interrupts disabled. The host version aborts the test process.
[[noreturn]] void halt_forever();

// A free-running, monotonically increasing cycle count (x86_64: TSC). Its rate is not calibrated;
// use kernel::time for durations.
uint64_t read_cycle_counter();

// How many hardware interrupt handlers are running on this CPU: 0 in normal code, >= 1 inside an
// IRQ handler; exceptions do not count. (x86_64: defined in interrupts.cpp, which also declares it
// in interrupts.h with the in_irq() helper; host: per-thread, driven by host_irq_enter/exit.)
uint32_t interrupt_nesting_depth();

// Told of every real (non-spurious) IRQ as its handler starts (`entering` true) and after its EOI
// (false); for the scheduler trace. Runs with interrupts disabled; must not block or log. Returns
// the observer it replaces. (Host: stored, never called, since the host has no IRQs.)
using IrqObserver = void (*)(uint8_t irq, bool entering);
IrqObserver set_irq_observer(IrqObserver observer);

#if defined(AETHELOS_HOST_TEST)
// Host tests only: make this thread look as if it entered / left a hardware interrupt handler, so
// code that asks interrupt_nesting_depth() can be exercised. The interrupt flag is left alone.
void host_irq_enter();
void host_irq_exit();
#endif

// Disables interrupts for its lifetime and restores the previous state, so guards nest.
class [[nodiscard]] InterruptGuard {
public:
    InterruptGuard() : m_were_enabled(interrupts_enabled()) { interrupts_disable(); }
    ~InterruptGuard()
    {
        if (m_were_enabled)
            interrupts_enable();
    }
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

    bool were_enabled() const { return m_were_enabled; }

private:
    bool m_were_enabled;
};

} // namespace arch
