// In-kernel tests of src/sync against the real CPU: the interrupt guard really clears and restores
// RFLAGS.IF, the PIT's interrupt cannot interleave an IrqSpinLock critical section, a lock shared
// between thread and interrupt context keeps its invariant, and a reschedule requested from the
// timer while preemption is disabled is deferred to preempt_enable().
//
// The lock checker's panics (recursion, rank inversion, ...) are covered by the host tests only:
// in the kernel they would end the run.
#include <atomic>
#include <initializer_list>

#include "arch/cpu.h"
#include "arch/x86_64/cpu.h"
#include "diag/ktest.h"
#include "sched/scheduler.h"
#include "sync/interrupt_guard.h"
#include "sync/irq_spinlock.h"
#include "sync/preempt.h"
#include "time/time.h"

namespace {

namespace sync = kernel::sync;

bool if_set() { return (arch::read_rflags() & arch::kRflagsInterrupt) != 0; }

// Sets IF for one scope, then restores the caller's state.
class ScopedInterrupts {
public:
    explicit ScopedInterrupts(bool enabled) : m_previous(arch::interrupts_enabled()) { set(enabled); }
    ~ScopedInterrupts() { set(m_previous); }
    ScopedInterrupts(const ScopedInterrupts&) = delete;
    ScopedInterrupts& operator=(const ScopedInterrupts&) = delete;

private:
    static void set(bool enabled)
    {
        if (enabled)
            arch::interrupts_enable();
        else
            arch::interrupts_disable();
    }
    bool m_previous;
};

// Chains a probe in front of the current tick callback (the Loom of Fate's, later) for one scope.
kernel::time::TickCallback g_chained_tick = nullptr;
void (*g_tick_probe)() = nullptr;

void probed_tick()
{
    if (g_tick_probe != nullptr)
        g_tick_probe();
    if (g_chained_tick != nullptr)
        g_chained_tick();
}

class ScopedTickProbe {
public:
    explicit ScopedTickProbe(void (*probe)())
    {
        arch::InterruptGuard guard;
        g_tick_probe = probe;
        g_chained_tick = kernel::time::set_tick_callback(&probed_tick);
    }
    ~ScopedTickProbe()
    {
        arch::InterruptGuard guard;
        kernel::time::set_tick_callback(g_chained_tick);
        g_tick_probe = nullptr;
        g_chained_tick = nullptr;
    }
    ScopedTickProbe(const ScopedTickProbe&) = delete;
    ScopedTickProbe& operator=(const ScopedTickProbe&) = delete;
};

// Sleeps (IF on) until `count` more ticks have been counted.
void wait_ticks(uint64_t count)
{
    ScopedInterrupts on(true);
    const uint64_t target = kernel::time::ticks() + count;
    while (kernel::time::ticks() < target)
        arch::wait_for_interrupt();
}

// TSC cycles per timer tick, measured over a few ticks (the TSC rate is not calibrated otherwise).
uint64_t cycles_per_tick()
{
    constexpr uint64_t kTicks = 4;
    wait_ticks(1); // start on a tick boundary
    const uint64_t start = arch::read_cycle_counter();
    wait_ticks(kTicks);
    return (arch::read_cycle_counter() - start) / kTicks;
}

// Spins for `cycles` TSC cycles without touching IF.
void busy_cycles(uint64_t cycles)
{
    const uint64_t start = arch::read_cycle_counter();
    while (arch::read_cycle_counter() - start < cycles)
        arch::cpu_relax();
}

// ---- probes, written from the timer interrupt ----------------------------------------------------

std::atomic<uint64_t> g_probe_ticks{0};
void count_tick() { g_probe_ticks.fetch_add(1, std::memory_order_relaxed); }

// A lock shared between thread context and the timer interrupt.
constinit sync::IrqSpinLock g_shared_lock{"ktest shared", sync::LockRank::kDevice};
bool g_in_critical_section = false; // protected by g_shared_lock
uint64_t g_irq_entries = 0;         // protected by g_shared_lock
std::atomic<uint32_t> g_interleavings{0};
std::atomic<uint32_t> g_bad_irq_context{0};

void lock_from_irq()
{
    kernel::sync::IrqSpinLock::Guard guard{g_shared_lock};
    if (g_in_critical_section)
        g_interleavings.fetch_add(1, std::memory_order_relaxed);
    // Inside an interrupt handler holding a spinlock. The count may be 2: the interrupted thread
    // may be in release(), which restores IF before it drops its own preempt count.
    if (!sync::in_interrupt() || sync::preempt_count() == 0 || sync::preemptible() || if_set())
        g_bad_irq_context.fetch_add(1, std::memory_order_relaxed);
    ++g_irq_entries;
}

// The Loom of Fate's tick in miniature: every tick asks for a reschedule.
std::atomic<uint32_t> g_count_seen_in_irq{~0u};
void request_resched()
{
    g_count_seen_in_irq.store(sync::preempt_count(), std::memory_order_relaxed);
    sync::set_need_resched();
}

// Installs a resched hook for one scope.
class ScopedReschedHook {
public:
    explicit ScopedReschedHook(sync::PreemptReschedHook hook) : m_previous(sync::set_preempt_resched_hook(hook)) { }
    ~ScopedReschedHook() { sync::set_preempt_resched_hook(m_previous); }
    ScopedReschedHook(const ScopedReschedHook&) = delete;
    ScopedReschedHook& operator=(const ScopedReschedHook&) = delete;

private:
    sync::PreemptReschedHook m_previous;
};

// Timer preemption off for one scope: the Loom of Fate then asks for no switch while this thread
// is the only one ready (no quantum expiries), so the resched flag carries only a test's requests.
class ScopedTimerPreemptionOff {
public:
    ScopedTimerPreemptionOff() : m_was_on(sched::set_timer_preemption(false)) { }
    ~ScopedTimerPreemptionOff() { sched::set_timer_preemption(m_was_on); }
    ScopedTimerPreemptionOff(const ScopedTimerPreemptionOff&) = delete;
    ScopedTimerPreemptionOff& operator=(const ScopedTimerPreemptionOff&) = delete;

private:
    bool m_was_on;
};

std::atomic<uint32_t> g_resched_calls{0};
std::atomic<bool> g_resched_preemptible{false};
void count_resched()
{
    g_resched_calls.fetch_add(1, std::memory_order_relaxed);
    g_resched_preemptible.store(sync::preemptible(), std::memory_order_relaxed);
}

} // namespace

KTEST(sync, interrupt_guard_clears_and_restores_if)
{
    {
        ScopedInterrupts on(true);
        KASSERT(if_set());
        {
            sync::InterruptGuard outer;
            KEXPECT(outer.were_enabled());
            KEXPECT(!if_set());
            {
                sync::InterruptGuard inner;
                KEXPECT(!inner.were_enabled());
                KEXPECT(!if_set());
            }
            KEXPECT(!if_set()); // the inner guard must not re-enable
        }
        KEXPECT(if_set());
    }
    {
        ScopedInterrupts off(false);
        {
            sync::InterruptGuard guard;
            KEXPECT(!guard.were_enabled());
            KEXPECT(!if_set());
        }
        KEXPECT(!if_set());
    }
}

namespace {
// try_lock()'s guard is beyond clang 14's thread-safety analysis (sync/irq_spinlock.h).
void check_restores_if_and_preempt_count(kernel::ktest::Context& ktest_ctx) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    sync::IrqSpinLock lock("ktest", sync::LockRank::kDevice);
    for (const bool initially : {true, false}) {
        ScopedInterrupts initial(initially);
        const uint32_t count_before = sync::preempt_count();
        {
            kernel::sync::IrqSpinLock::Guard guard{lock};
            KEXPECT(!if_set());
            KEXPECT_EQ(sync::preempt_count(), count_before + 1);
            KEXPECT(lock.is_locked());
            KEXPECT(!lock.try_lock()); // held by this CPU: fails, changes nothing
            KEXPECT(!if_set());
            KEXPECT_EQ(sync::preempt_count(), count_before + 1);
        }
        KEXPECT_EQ(if_set(), initially);
        KEXPECT_EQ(sync::preempt_count(), count_before);
        KEXPECT(!lock.is_locked());
        if (auto guard = lock.try_lock()) {
            KEXPECT(!if_set());
        } else {
            ktest_ctx.fail(__FILE__, __LINE__, "try_lock of a free lock failed");
        }
        KEXPECT_EQ(if_set(), initially);
    }
}
} // namespace

KTEST(sync, irq_spinlock_restores_if_and_preempt_count) { check_restores_if_and_preempt_count(ktest_ctx); }

KTEST(sync, timer_cannot_interleave_a_critical_section)
{
    KASSERT(kernel::time::initialized());
    ScopedInterrupts on(true);
    ScopedTickProbe probe(&count_tick);
    const uint64_t per_tick = cycles_per_tick();
    KASSERT(per_tick > 1000);           // a TSC in the MHz range or faster, ticks of at most 10 ms
    KASSERT(g_probe_ticks.load() != 0); // the probe does see ticks with IF on

    // At least 5 ms, and at least 3 ticks at any rate.
    uint64_t ticks_to_span = kernel::time::ns_to_ticks(5'000'000);
    if (ticks_to_span < 3)
        ticks_to_span = 3;

    sync::IrqSpinLock lock("ktest", sync::LockRank::kDevice);
    uint64_t probe_inside = 0;
    uint64_t clock_inside = 0;
    uint64_t clock_before = 0;
    {
        kernel::sync::IrqSpinLock::Guard guard{lock};
        const uint64_t probe_before = g_probe_ticks.load();
        clock_before = kernel::time::ticks();
        busy_cycles(per_tick * ticks_to_span);
        probe_inside = g_probe_ticks.load() - probe_before;
        clock_inside = kernel::time::ticks() - clock_before;
        KEXPECT(!if_set());
    }
    KEXPECT_EQ(probe_inside, 0u);
    KEXPECT_EQ(clock_inside, 0u);
    // The tick that came due inside was held pending by the PIC and is delivered once IF is back.
    wait_ticks(1);
    KEXPECT(kernel::time::ticks() > clock_before);
}

KTEST(sync, lock_shared_with_the_timer_interrupt_keeps_its_invariant)
{
    KASSERT(kernel::time::initialized());
    ScopedInterrupts on(true);
    {
        kernel::sync::IrqSpinLock::Guard guard{g_shared_lock};
        g_irq_entries = 0;
        g_in_critical_section = false;
    }
    g_interleavings.store(0);
    g_bad_irq_context.store(0);
    ScopedTickProbe probe(&lock_from_irq);

    // Keep entering the critical section until the interrupt has taken the lock in between often
    // enough; bounded by the clock in case the timer were dead.
    constexpr uint64_t kIrqEntriesWanted = 20;
    const uint64_t give_up_at = kernel::time::ticks() + 2000;
    uint64_t rounds = 0;
    uint64_t counter = 0;
    uint64_t irq_entries = 0;
    while (irq_entries < kIrqEntriesWanted && kernel::time::ticks() < give_up_at) {
        kernel::sync::IrqSpinLock::Guard guard{g_shared_lock};
        g_in_critical_section = true;
        const uint64_t seen = counter;
        for (int i = 0; i < 2000; ++i)
            arch::cpu_relax();
        counter = seen + 1;
        g_in_critical_section = false;
        irq_entries = g_irq_entries;
        ++rounds;
    }
    KEXPECT(irq_entries >= kIrqEntriesWanted);
    KEXPECT_EQ(counter, rounds);
    KEXPECT_EQ(g_interleavings.load(), 0u);
    KEXPECT_EQ(g_bad_irq_context.load(), 0u);
    KEXPECT(!g_shared_lock.is_locked());
    KEXPECT_EQ(sync::preempt_count(), 0u);
}

KTEST(sync, resched_from_the_tick_is_deferred_until_preempt_enable)
{
    KASSERT(kernel::time::initialized());
    ScopedInterrupts on(true);
    KEXPECT_EQ(sync::preempt_count(), 0u);
    KEXPECT(sync::preemptible());
    sync::assert_may_sleep("ktest"); // a plain thread context may sleep (a report would panic)

    g_resched_calls.store(0);
    g_resched_preemptible.store(false);
    // The Loom's own requests (this thread's quantum running out) would land in the same flag, and
    // be counted when one fell inside a guard below.
    const ScopedTimerPreemptionOff loom_quiet;
    const ScopedReschedHook hook(&count_resched);
    sync::clear_need_resched();
    {
        ScopedTickProbe probe(&request_resched);
        {
            sync::PreemptGuard outer;
            {
                sync::PreemptGuard inner;
                KEXPECT_EQ(sync::preempt_count(), 2u);
                wait_ticks(2);
                KEXPECT(sync::need_resched());
                KEXPECT_EQ(g_count_seen_in_irq.load(), 2u); // the interrupt sees this CPU's count
            }
            KEXPECT_EQ(g_resched_calls.load(), 0u); // count 1: still deferred
        }
        KEXPECT_EQ(g_resched_calls.load(), 1u); // exactly once, when the count returned to 0
        KEXPECT(g_resched_preemptible.load());
    }
    // Without the probe nothing asks any more, over more ticks than a quantum.
    sync::clear_need_resched();
    {
        sync::PreemptGuard guard;
        wait_ticks(sched::current()->quantum_ticks() + 1);
    }
    KEXPECT_EQ(g_resched_calls.load(), 1u);
}
