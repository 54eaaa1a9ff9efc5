// Host implementation of arch/cpu.h for the Catch2 tests: the interrupt flag is per-thread state
// so code that disables and restores interrupts can be exercised and checked.
#include "arch/cpu.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace arch {

namespace {
thread_local bool t_interrupts_enabled = false;
thread_local uint32_t t_interrupt_nesting_depth = 0;
} // namespace

bool interrupts_enabled() { return t_interrupts_enabled; }
void interrupts_disable() { t_interrupts_enabled = false; }
void interrupts_enable() { t_interrupts_enabled = true; }

void wait_for_interrupt()
{
    t_interrupts_enabled = true;
    std::this_thread::yield();
}

void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

[[noreturn]] void halt_forever() { std::abort(); }

uint64_t read_cycle_counter()
{
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

uint32_t interrupt_nesting_depth() { return t_interrupt_nesting_depth; }

IrqObserver set_irq_observer(IrqObserver observer)
{
    static IrqObserver s_observer = nullptr;
    const IrqObserver previous = s_observer;
    s_observer = observer;
    return previous;
}
void host_irq_enter() { ++t_interrupt_nesting_depth; }
void host_irq_exit()
{
    if (t_interrupt_nesting_depth == 0)
        std::abort(); // unbalanced: a broken test
    --t_interrupt_nesting_depth;
}

} // namespace arch
