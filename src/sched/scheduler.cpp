// The Loom of Fate's kernel side: its state, init() and the running thread. See scheduler.h.
//
// Kernel glue (global instances, the arch hooks of sched/thread.h, mm's kernel heap) in files of
// one job: this one, scheduler_lifetime.cpp, scheduler_switching.cpp, scheduler_stats.cpp and
// scheduler_trace.cpp, sharing scheduler_state.h. The host tests leave them out and test the
// policy core (sched/policy.h) instead.
#include "sched/scheduler.h"

#include <new>

#include "arch/cpu.h"
#include "arch/thread.h"
#include "lib/log.h"
#include "lib/panic.h"
#include "lib/thread_safety.h"
#include "mm/kmalloc.h"
#include "sched/policy.h"
#include "sched/scheduler_state.h"
#include "sync/irq_spinlock.h"
#include "sync/preempt.h"
#include "time/time.h"

namespace sched {

using namespace detail;

namespace detail {

constinit SchedulerState g_sched;
constinit mm::ObjectCache<Thread> g_threads;
Thread* volatile g_current = nullptr;
Thread* g_boot = nullptr;
Thread* g_idle = nullptr;
bool g_initialized = false;

Thread* require_current(const char* operation)
{
    Thread* self = g_current;
    if (!g_initialized || self == nullptr)
        kernel::panic("Loom of Fate: {} before sched::init()", operation);
    return self;
}

} // namespace detail

namespace {

const char* owner_name()
{
    Thread* t = g_current;
    return t != nullptr ? A::name(t) : nullptr;
}

uint32_t ms_to_ticks(uint64_t ms)
{
    const uint64_t ticks = kernel::time::ns_to_ticks(ms * 1'000'000);
    return static_cast<uint32_t>(ticks == 0 ? 1 : (ticks > UINT32_MAX ? UINT32_MAX : ticks));
}

// init()'s first steps, before the Loom runs anything: no other thread or hook can look, so the
// guarded state is set up without the lock.
void rebuild_policy_before_start(const PolicyConfig& config) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    // Policy has no const or reference members, so g_sched.m_policy names the new object.
    g_sched.m_policy.~Policy();
    new (&g_sched.m_policy) Policy(config);
}

uint64_t next_id_before_start() AETHELOS_NO_THREAD_SAFETY_ANALYSIS { return ++g_sched.m_next_id; }

} // namespace

void init()
{
    if (g_initialized)
        return;
    arch::thread_arch_init();
    if (auto cache = g_threads.init(mm::kernel_object_cache_host(), "thread"); !cache)
        kernel::panic("Loom of Fate: cannot create the thread cache: {}", mm::to_string(cache.error()));

    PolicyConfig config;
    config.default_quantum_ticks = ms_to_ticks(kDefaultQuantumMs);
    config.starvation_bound_ticks = ms_to_ticks(500);
    config.tick_period_numerator_ns = kernel::time::tick_period_ns();
    config.tick_period_denominator = 1;
    rebuild_policy_before_start(config);

    // The boot flow becomes "heartwood", running on the boot stack (no slot, no guard needed:
    // boot.S gave it one).
    Thread* boot = g_threads.create(next_id_before_start(), "heartwood", Priority::Normal, 0u);
    if (boot == nullptr)
        kernel::panic("Loom of Fate: no memory for the boot thread");
    arch::thread_context_init_current(A::context(*boot));

    auto idle = create_thread(&idle_main, nullptr, "idle", Priority::Idle, 0);
    if (!idle)
        kernel::panic("Loom of Fate: cannot create the idle thread: {}", to_string(idle.error()));

    {
        const IrqState state = g_sched.m_lock.acquire();
        g_boot = boot;
        g_idle = *idle;
        link_thread(boot);
        link_thread(*idle);
        policy().set_idle_thread(A::entity(**idle));
        policy().admit(A::entity(*boot));
        Thread* first = A::from_entity(policy().pick_next());
        if (first != boot)
            kernel::panic("Loom of Fate: the boot thread did not become current");
        g_current = boot;
        kernel::sync::clear_need_resched();
        kernel::sync::set_owner_name_hook(&owner_name);
        kernel::sync::set_preempt_resched_hook(&resched_hook);
        arch::thread_install_irq_exit_switch(&irq_exit_point);
        kernel::time::set_tick_callback(&on_tick);
        g_initialized = true;
        g_sched.m_lock.release(state);
    }
    lib::log::info("Loom of Fate: preemptive scheduler up ({} Hz ticks, {} ms quanta, {} KiB kernel stacks "
                   "with guard pages, eager FXSAVE)",
                   kernel::time::hz(), kDefaultQuantumMs, arch::kKernelStackBytes / 1024);
}

bool initialized() { return g_initialized; }

Thread* current() { return g_current; }

} // namespace sched
