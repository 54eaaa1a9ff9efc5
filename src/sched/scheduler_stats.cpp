// The Loom of Fate's statistics: the counters and the sample behind kernel::stats. Kernel glue
// beside scheduler.cpp (see there).
#include "sched/scheduler.h"

#include "lib/thread_safety.h"
#include "sched/policy.h"
#include "sched/scheduler_state.h"
#include "sync/irq_spinlock.h"

namespace sched {

using namespace detail;

namespace {

// Lock held.
void fill_counters_locked(SchedulerCounters& out) AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    const PolicyCounters& c = policy().counters();
    out.context_switches = c.context_switches;
    out.voluntary_switches = c.voluntary_switches;
    out.involuntary_switches = c.involuntary_switches;
    out.irq_exit_requests = g_sched.m_irq_exit_requests;
    out.irq_exit_switches = g_sched.m_irq_exit_switches;
    out.deferred_requests = g_sched.m_deferred_requests;
    out.deferred_switches = g_sched.m_deferred_switches;
    out.preemptions = c.preemptions;
    out.quantum_expiries = c.quantum_expiries;
    out.held_back = g_sched.m_held_back;
    out.threads_spawned = g_sched.m_spawned;
    out.threads_reaped = g_sched.m_reaped;
    out.threads_live = g_sched.m_live;
    out.idle_ticks = c.idle_ticks;
}

} // namespace

SchedulerCounters counters()
{
    SchedulerCounters out;
    if (!g_initialized)
        return out;
    IrqSpinLock::Guard guard{g_sched.m_lock};
    fill_counters_locked(out);
    return out;
}

bool sample(LoomSample& out, ThreadVisitor visit, void* context)
{
    if (!g_initialized)
        return false;
    IrqSpinLock::Guard guard{g_sched.m_lock};
    out.now_ticks = policy().now();
    fill_counters_locked(out.counters);
    out.counts = policy().counts();
    out.policy = policy().counters();
    if (visit != nullptr)
        for (Thread* t = g_sched.m_all; t != nullptr; t = A::all_next(*t))
            visit(*t, context);
    return true;
}

} // namespace sched
