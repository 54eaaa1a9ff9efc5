// The Loom of Fate's switching: the switch itself, the preemption points (interrupt exit, the
// deferred resched hook), the tick, yield, sleep, park/unpark, priorities and quanta, and timer
// preemption. Kernel glue beside scheduler.cpp (see there).
#include "sched/scheduler.h"

#include <bit>

#include "arch/cpu.h"
#include "arch/thread.h"
#include "lib/panic.h"
#include "lib/thread_safety.h"
#include "sched/policy.h"
#include "sched/scheduler_state.h"
#include "sched/trace.h"
#include "sync/irq_spinlock.h"
#include "sync/preempt.h"
#include "time/time.h"

namespace sched {

using namespace detail;

namespace {

// Is a switch due even with timer preemption off? Yes when the running thread is the idle thread
// or is leaving the CPU anyway, or when a ready thread has a more urgent base priority (a boost
// does not count: boosts are time slicing too). Lock held.
bool outranked_locked() AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    const SchedEntity* running = policy().current();
    if (running == nullptr || running->is_idle_thread() || running->state() != ThreadState::Running)
        return true;
    const uint8_t mine = level_of(running->base_priority());
    const RunQueue& queue = policy().run_queue();
    uint64_t more_urgent = queue.non_empty_mask() & ((uint64_t{1} << mine) - 1);
    while (more_urgent != 0) {
        const auto level = static_cast<uint8_t>(std::countr_zero(more_urgent));
        more_urgent &= more_urgent - 1;
        if (level != kLevelBoost)
            return true;
        for (const SchedEntity* e = queue.front(level); e != nullptr; e = RunQueue::next(*e))
            if (level_of(e->base_priority()) < mine)
                return true;
    }
    return false;
}

// Whether a switch the policy asks for may be requested now (see set_timer_preemption). Lock held.
bool resched_allowed_locked() AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    if (g_sched.m_timer_preemption) [[likely]]
        return true;
    if (outranked_locked())
        return true;
    ++g_sched.m_held_back;
    return false;
}

[[noreturn, gnu::cold, gnu::noinline]] void panic_nothing_to_run()
{
    kernel::panic("Loom of Fate: nothing to run (no idle thread)");
}

[[gnu::cold, gnu::noinline]] void trace_switch(const Thread* prev, const Thread* next, trace::SwitchCause cause)
{
    const bool preempted = cause == trace::SwitchCause::IrqExit || cause == trace::SwitchCause::Deferred;
    if (preempted && !prev->is_idle() && prev->state() == ThreadState::Ready)
        trace_record(trace::EventKind::Preempt, prev->id(), next->id(), cause_byte(cause));
    trace_record(trace::EventKind::Switch, prev->id(), next->id(), cause_byte(cause));
}

// The switch itself. Lock held, interrupts off. `picked` is what the policy just decided (and
// counted); if it is another thread than `prev` (the running one), the CPU moves to it, and this
// returns when `prev` is switched back in. The lock stays held across the switch: the thread that
// resumes releases it with its own saved state. `cause` only goes to the trace.
[[gnu::always_inline]] inline void switch_to_locked(Thread* prev, SchedEntity* picked, trace::SwitchCause cause)
    AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    kernel::sync::clear_need_resched();
    if (picked == nullptr) [[unlikely]]
        panic_nothing_to_run();
    Thread* next = A::from_entity(picked);
    if (next == prev)
        return;
    if (g_sched.m_trace_on) [[unlikely]]
        trace_switch(prev, next, cause);
    g_current = next;
    if (A::stack(*next).valid()) [[likely]] // all but the boot thread
        arch::thread_set_kernel_stack(A::stack(*next).top);
    arch::thread_context_switch(A::context(*prev), A::context(*next));
}

// A preemption point: interrupt exit (interrupts off) or preempt_enable()'s resched hook
// (interrupts on). Both run with the preempt count 0. The counters change under the lock: the
// hook runs with interrupts on, so a bare increment could interleave with another thread's.
// `cause` picks the counters (both callers pass a constant, so the choice folds away).
void preempt_switch(trace::SwitchCause cause)
{
    const IrqState state = g_sched.m_lock.acquire();
    const bool at_irq_exit = cause == trace::SwitchCause::IrqExit;
    ++(at_irq_exit ? g_sched.m_irq_exit_requests : g_sched.m_deferred_requests);
    Thread* prev = g_current;
    SchedEntity* picked = policy().pick_next();
    if (picked != nullptr && A::from_entity(picked) != prev)
        ++(at_irq_exit ? g_sched.m_irq_exit_switches : g_sched.m_deferred_switches);
    switch_to_locked(prev, picked, cause);
    g_sched.m_lock.release(state);
}

// The tick and the sleepers it is about to wake (they are still Sleeping). Lock held.
[[gnu::cold, gnu::noinline]] void trace_tick_locked(uint64_t now) AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    Thread* running = g_current;
    trace_record(trace::EventKind::Tick, running != nullptr ? running->id() : 0, kernel::time::uptime_ns());
    if (policy().next_wake_tick() > now)
        return;
    for (Thread* t = g_sched.m_all; t != nullptr; t = A::all_next(*t))
        if (t->state() == ThreadState::Sleeping && t->entity().wake_tick() <= now)
            trace_record(trace::EventKind::Wake, t->id(), 0, cause_byte(trace::WakeCause::Timer));
}

} // namespace

namespace detail {

// Copies the policy's request into the per-CPU flag the preemption points look at. Lock held.
void mirror_resched() AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    if (policy().need_resched() && resched_allowed_locked())
        kernel::sync::set_need_resched();
}

void switch_locked(trace::SwitchCause cause) AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    Thread* prev = g_current;
    switch_to_locked(prev, policy().pick_next(), cause);
}

void irq_exit_point()
{
    if (!kernel::sync::need_resched() || kernel::sync::preempt_count() != 0)
        return;
    kernel::sync::clear_need_resched();
    preempt_switch(trace::SwitchCause::IrqExit);
}

void resched_hook() { preempt_switch(trace::SwitchCause::Deferred); }

// Timer interrupt (interrupts off): accounting only; the switch happens at the interrupt exit.
void on_tick()
{
    IrqSpinLock::Guard guard{g_sched.m_lock};
    const uint64_t now = kernel::time::ticks();
    if (g_sched.m_trace_on) [[unlikely]]
        trace_tick_locked(now);
    if (policy().on_tick(now) && resched_allowed_locked())
        kernel::sync::set_need_resched();
}

} // namespace detail

void yield()
{
    const IrqState state = g_sched.m_lock.acquire();
    Thread* prev = g_current;
    SchedEntity* picked = policy().yield_and_pick_next(); // = Policy::yield() + pick_next()
    // Before init() the policy has no entity at all: nothing to yield to. (Checking here, on the
    // rare path, rather than g_initialized up front keeps the round trip within its budget.)
    if (picked == nullptr && !g_initialized) [[unlikely]] {
        g_sched.m_lock.release(state);
        return;
    }
    switch_to_locked(prev, picked, trace::SwitchCause::Yield);
    g_sched.m_lock.release(state);
}

void sleep_ticks(uint64_t ticks)
{
    Thread* self = require_current("sleep");
    kernel::sync::assert_may_sleep("sched::sleep_for");
    if (ticks == 0) {
        yield();
        return;
    }
    const IrqState state = g_sched.m_lock.acquire();
    // +1: the current tick is already partly over, so waking at now + ticks could be early.
    const uint64_t wake_tick = policy().now() + ticks + 1;
    if (policy().sleep_until(A::entity(*self), wake_tick)) {
        trace_event(trace::EventKind::Block, self->id(), wake_tick, cause_byte(trace::BlockCause::Sleep));
        switch_locked();
    }
    g_sched.m_lock.release(state);
}

void sleep_for(uint64_t ms) { sleep_ticks(ms == 0 ? 0 : kernel::time::ns_to_ticks(ms * 1'000'000)); }

void set_priority(Thread* thread, Priority priority)
{
    if (thread == nullptr || thread == g_idle)
        return;
    IrqSpinLock::Guard guard{g_sched.m_lock};
    if (thread->state() == ThreadState::Exited)
        return;
    policy().set_priority(A::entity(*thread), priority);
    mirror_resched();
}

void set_quantum(Thread* thread, uint32_t quantum_ticks)
{
    if (thread == nullptr || thread == g_idle)
        return;
    IrqSpinLock::Guard guard{g_sched.m_lock};
    if (thread->state() == ThreadState::Exited)
        return;
    policy().set_quantum(A::entity(*thread), quantum_ticks);
}

size_t set_quantum_all(uint32_t quantum_ticks)
{
    IrqSpinLock::Guard guard{g_sched.m_lock};
    size_t changed = 0;
    for (Thread* t = g_sched.m_all; t != nullptr; t = A::all_next(*t)) {
        if (t == g_idle || t->state() == ThreadState::Exited)
            continue;
        policy().set_quantum(A::entity(*t), quantum_ticks);
        ++changed;
    }
    return changed;
}

void park()
{
    Thread* self = require_current("park");
    kernel::sync::assert_may_sleep("sched::park");
    const IrqState state = g_sched.m_lock.acquire();
    if (!A::unpark_token(*self)) {
        A::parked(*self) = true;
        trace_event(trace::EventKind::Block, self->id(), 0, cause_byte(trace::BlockCause::Park));
        policy().block(A::entity(*self));
        switch_locked();
        A::parked(*self) = false;
    }
    A::unpark_token(*self) = false;
    g_sched.m_lock.release(state);
}

void unpark(Thread* thread)
{
    if (thread == nullptr)
        return;
    IrqSpinLock::Guard guard{g_sched.m_lock};
    if (A::parked(*thread) && thread->state() == ThreadState::Blocked) {
        A::unpark_token(*thread) = true;
        if (policy().wake(A::entity(*thread)) && g_sched.m_trace_on) [[unlikely]] {
            Thread* waker = g_current;
            trace_record(trace::EventKind::Wake, thread->id(), waker != nullptr ? waker->id() : 0,
                         cause_byte(trace::WakeCause::Unpark));
        }
        mirror_resched();
    } else {
        A::unpark_token(*thread) = true;
    }
}

// ---- Timer preemption ----

bool set_timer_preemption(bool enabled)
{
    IrqSpinLock::Guard guard{g_sched.m_lock};
    const bool was = g_sched.m_timer_preemption;
    g_sched.m_timer_preemption = enabled;
    // A switch held back meanwhile (an expired quantum) is due now; it happens when the lock is
    // released (preempt_enable's resched hook).
    if (enabled && g_initialized)
        mirror_resched();
    return was;
}

// A snapshot, read without the lock (one byte on the one CPU).
bool timer_preemption() AETHELOS_NO_THREAD_SAFETY_ANALYSIS { return g_sched.m_timer_preemption; }

} // namespace sched
