// The Loom of Fate's kernel side: threads, switching, preemption points. See scheduler.h.
//
// Kernel glue (global instances, the arch hooks of sched/thread.h, mm's kernel heap); the host
// tests leave this file out and test the policy core (sched/policy.h) instead.
#include "sched/scheduler.h"

#include <new>
#include <type_traits>

#include "arch/cpu.h"
#include "kernel/panic.h"
#include "kernel/time.h"
#include "lib/log.h"
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "sched/policy.h"
#include "sync/irq_spinlock.h"
#include "sync/preempt.h"

namespace sched {

Thread::Thread(uint64_t id, const char* name, Priority priority, uint32_t quantum_ticks)
    : m_entity(id, priority, quantum_ticks)
{
    lib::copy_string(m_name, sizeof(m_name), lib::StringView(name != nullptr ? name : "?"));
}

// The scheduler's access to Thread's private parts.
struct ThreadAccess {
    static SchedEntity& entity(Thread& t) { return t.m_entity; }
    static Thread* from_entity(SchedEntity* e)
    {
        static_assert(std::is_standard_layout_v<Thread> && offsetof(Thread, m_entity) == 0);
        return reinterpret_cast<Thread*>(e);
    }
    static arch::ThreadContext& context(Thread& t) { return t.m_context; }
    static arch::KernelStack& stack(Thread& t) { return t.m_stack; }
    static ThreadEntry& entry(Thread& t) { return t.m_entry; }
    static void*& arg(Thread& t) { return t.m_arg; }
    static Thread*& joiner(Thread& t) { return t.m_joiner; }
    static Thread*& all_next(Thread& t) { return t.m_all_next; }
    static Thread*& all_prev(Thread& t) { return t.m_all_prev; }
    static Thread*& zombie_next(Thread& t) { return t.m_zombie_next; }
    static bool& detached(Thread& t) { return t.m_detached; }
    static bool& joined(Thread& t) { return t.m_joined; }
    static bool& parked(Thread& t) { return t.m_parked; }
    static bool& unpark_token(Thread& t) { return t.m_unpark_token; }
    static const char* name(const Thread* t) { return t->m_name; }
};

namespace {

using A = ThreadAccess;
using kernel::sync::IrqSpinLock;
using kernel::sync::IrqState;
using kernel::sync::LockRank;

// Everything below is guarded by g_lock (interrupts off while held), except where noted.
constinit IrqSpinLock g_lock { "scheduler", LockRank::kScheduler };
alignas(Policy) unsigned char g_policy_storage[sizeof(Policy)]; // constructed by init()
constinit mm::ObjectCache<Thread> g_threads;
// The running thread. Written under the lock with interrupts off; read lock-free by current()
// and the owner-name hook (a word-sized load on the one CPU).
Thread* volatile g_current = nullptr;
Thread* g_boot = nullptr;
Thread* g_idle = nullptr;
Thread* g_all = nullptr;
Thread* g_zombies = nullptr;
uint64_t g_next_id = 0;
uint64_t g_spawned = 0;
uint64_t g_reaped = 0;
uint64_t g_live = 0;
uint64_t g_irq_exit_switches = 0;
uint64_t g_deferred_switches = 0;
bool g_initialized = false;

// A fixed address (no pointer to load on every switch).
Policy& policy() { return *std::launder(reinterpret_cast<Policy*>(g_policy_storage)); }

// Copies the policy's request into the per-CPU flag the preemption points look at.
void mirror_resched()
{
    if (policy().need_resched()) kernel::sync::set_need_resched();
}

void link_thread(Thread* t)
{
    A::all_prev(*t) = nullptr;
    A::all_next(*t) = g_all;
    if (g_all != nullptr) A::all_prev(*g_all) = t;
    g_all = t;
    ++g_live;
}

void unlink_thread(Thread* t)
{
    if (A::all_prev(*t) != nullptr)
        A::all_next(*A::all_prev(*t)) = A::all_next(*t);
    else
        g_all = A::all_next(*t);
    if (A::all_next(*t) != nullptr) A::all_prev(*A::all_next(*t)) = A::all_prev(*t);
    --g_live;
}

[[noreturn, gnu::cold, gnu::noinline]] void panic_nothing_to_run()
{
    kernel::panic("Loom of Fate: nothing to run (no idle thread)");
}

// The switch itself. Lock held, interrupts off. `picked` is what the policy just decided (and
// counted); if it is another thread than `prev` (the running one), the CPU moves to it, and this
// returns when `prev` is switched back in. The lock stays held across the switch: the thread that
// resumes releases it with its own saved state.
[[gnu::always_inline]] inline void switch_to_locked(Thread* prev, SchedEntity* picked)
{
    kernel::sync::clear_need_resched();
    if (picked == nullptr) [[unlikely]]
        panic_nothing_to_run();
    Thread* next = A::from_entity(picked);
    if (next == prev) return;
    g_current = next;
    if (A::stack(*next).valid()) [[likely]] // all but the boot thread
        arch::thread_set_kernel_stack(A::stack(*next).top);
    arch::thread_context_switch(A::context(*prev), A::context(*next));
}

// A switch at a preemption point or after block/sleep/exit: the policy's pick_next() decides.
void switch_locked()
{
    Thread* prev = g_current;
    switch_to_locked(prev, policy().pick_next());
}

// Detaches an exited thread from the Loom (lock held); the caller frees it after unlocking.
void forget_locked(Thread* t)
{
    unlink_thread(t);
    policy().reap(A::entity(*t));
}

// Lock not held: the thread no longer runs and nothing refers to it.
void free_thread(Thread* t)
{
    if (A::stack(*t).valid()) arch::kernel_stack_free(A::stack(*t));
    if (auto destroyed = g_threads.destroy(t); !destroyed)
        kernel::panic("Loom of Fate: freeing thread {}: {}", static_cast<const void*>(t),
                      mm::to_string(destroyed.error()));
    const IrqState state = g_lock.acquire();
    ++g_reaped;
    g_lock.release(state);
}

// Frees every detached thread that has exited.
void reap_zombies()
{
    for (;;) {
        const IrqState state = g_lock.acquire();
        Thread* t = g_zombies;
        if (t != nullptr) {
            g_zombies = A::zombie_next(*t);
            forget_locked(t);
        }
        g_lock.release(state);
        if (t == nullptr) return;
        free_thread(t);
    }
}

// A preemption point: interrupt exit (interrupts off) or preempt_enable()'s resched hook
// (interrupts on). Both run with the preempt count 0.
void preempt_switch()
{
    const IrqState state = g_lock.acquire();
    switch_locked();
    g_lock.release(state);
}

void irq_exit_point()
{
    if (!kernel::sync::need_resched() || kernel::sync::preempt_count() != 0) return;
    kernel::sync::clear_need_resched();
    ++g_irq_exit_switches;
    preempt_switch();
}

void resched_hook()
{
    ++g_deferred_switches;
    preempt_switch();
}

// Timer interrupt (interrupts off): accounting only; the switch happens at the interrupt exit.
void on_tick()
{
    auto guard = g_lock.lock();
    if (policy().on_tick(kernel::time::ticks())) kernel::sync::set_need_resched();
}

const char* owner_name()
{
    Thread* t = g_current;
    return t != nullptr ? A::name(t) : nullptr;
}

// Every new thread's first code: the switch that brought it here holds the lock.
[[noreturn]] void thread_start(void* arg)
{
    Thread* self = static_cast<Thread*>(arg);
    g_lock.release(IrqState { true });
    A::entry(*self)(A::arg(*self));
    sched::exit();
}

[[noreturn]] void idle_main(void*)
{
    for (;;) {
        reap_zombies();
        arch::wait_for_interrupt(); // sti; hlt: a wake-up is an interrupt, whose exit switches
    }
}

uint32_t ms_to_ticks(uint64_t ms)
{
    const uint64_t ticks = kernel::time::ns_to_ticks(ms * 1'000'000);
    return static_cast<uint32_t>(ticks == 0 ? 1 : (ticks > UINT32_MAX ? UINT32_MAX : ticks));
}

// A Thread with a mapped stack whose first switch-in runs start(arg); not yet in the Loom.
lib::Expected<Thread*, SpawnError> create_thread(ThreadEntry entry, void* arg, const char* name,
                                                 Priority priority, uint32_t quantum_ticks)
{
    uint64_t id;
    {
        const IrqState state = g_lock.acquire();
        id = ++g_next_id;
        g_lock.release(state);
    }
    Thread* t = g_threads.create(id, name, priority, quantum_ticks);
    if (t == nullptr) return lib::unexpected(SpawnError::OutOfMemory);
    auto stack = arch::kernel_stack_allocate();
    if (!stack) {
        (void)g_threads.destroy(t);
        return lib::unexpected(stack.error() == arch::KernelStackError::NoSlot ? SpawnError::NoStackSlot
                                                                              : SpawnError::OutOfMemory);
    }
    A::stack(*t) = *stack;
    A::entry(*t) = entry;
    A::arg(*t) = arg;
    arch::thread_context_init(A::context(*t), stack->top, &thread_start, t);
    return t;
}

Thread* require_current(const char* operation)
{
    Thread* self = g_current;
    if (!g_initialized || self == nullptr) kernel::panic("Loom of Fate: {} before sched::init()", operation);
    return self;
}

} // namespace

const char* to_string(SpawnError error)
{
    switch (error) {
    case SpawnError::NotInitialized: return "the Loom of Fate is not initialised";
    case SpawnError::OutOfMemory: return "out of memory";
    case SpawnError::NoStackSlot: return "no free kernel-stack slot";
    case SpawnError::InvalidArgument: return "invalid argument";
    }
    return "unknown spawn error";
}

void init()
{
    if (g_initialized) return;
    arch::thread_arch_init();
    if (auto cache = g_threads.init(mm::kernel_object_cache_host(), "thread"); !cache)
        kernel::panic("Loom of Fate: cannot create the thread cache: {}", mm::to_string(cache.error()));

    PolicyConfig config;
    config.default_quantum_ticks = ms_to_ticks(kDefaultQuantumMs);
    config.starvation_bound_ticks = ms_to_ticks(500);
    config.tick_period_numerator_ns = kernel::time::tick_period_ns();
    config.tick_period_denominator = 1;
    new (g_policy_storage) Policy(config);

    // The boot flow becomes "heartwood", running on the boot stack (no slot, no guard needed:
    // boot.S gave it one).
    Thread* boot = g_threads.create(++g_next_id, "heartwood", Priority::Normal, 0u);
    if (boot == nullptr) kernel::panic("Loom of Fate: no memory for the boot thread");
    arch::thread_context_init_current(A::context(*boot));

    auto idle = create_thread(&idle_main, nullptr, "idle", Priority::Idle, 0);
    if (!idle) kernel::panic("Loom of Fate: cannot create the idle thread: {}", to_string(idle.error()));

    {
        const IrqState state = g_lock.acquire();
        g_boot = boot;
        g_idle = *idle;
        link_thread(boot);
        link_thread(*idle);
        policy().set_idle_thread(A::entity(**idle));
        policy().admit(A::entity(*boot));
        Thread* first = A::from_entity(policy().pick_next());
        if (first != boot) kernel::panic("Loom of Fate: the boot thread did not become current");
        g_current = boot;
        kernel::sync::clear_need_resched();
        kernel::sync::set_owner_name_hook(&owner_name);
        kernel::sync::set_preempt_resched_hook(&resched_hook);
        arch::thread_install_irq_exit_switch(&irq_exit_point);
        kernel::time::set_tick_callback(&on_tick);
        g_initialized = true;
        g_lock.release(state);
    }
    lib::log::info("Loom of Fate: preemptive scheduler up ({} Hz ticks, {} ms quanta, {} KiB kernel stacks "
                   "with guard pages, eager FXSAVE)",
                   kernel::time::hz(), kDefaultQuantumMs, arch::kKernelStackBytes / 1024);
}

bool initialized() { return g_initialized; }

Thread* current() { return g_current; }

lib::Expected<Thread*, SpawnError> spawn(ThreadEntry entry, void* arg, const char* name, Priority priority,
                                         uint32_t quantum_ticks)
{
    if (!g_initialized) return lib::unexpected(SpawnError::NotInitialized);
    if (entry == nullptr) return lib::unexpected(SpawnError::InvalidArgument);
    // Detached threads are normally freed by the idle thread; under full load it may not run.
    reap_zombies();
    auto created = create_thread(entry, arg, name, priority, quantum_ticks);
    if (!created) return created;
    Thread* t = *created;
    {
        auto guard = g_lock.lock();
        link_thread(t);
        ++g_spawned;
        policy().admit(A::entity(*t));
        mirror_resched();
    } // a new thread that outranks us runs here (preempt_enable's resched hook)
    return t;
}

void exit()
{
    Thread* self = require_current("exit");
    if (self == g_boot || self == g_idle) kernel::panic("Loom of Fate: thread '{}' may not exit", A::name(self));
    (void)g_lock.acquire();
    policy().exit(A::entity(*self));
    if (Thread* joiner = A::joiner(*self)) policy().wake(A::entity(*joiner));
    if (A::detached(*self)) {
        A::zombie_next(*self) = g_zombies;
        g_zombies = self;
    }
    switch_locked();
    kernel::panic("Loom of Fate: exited thread '{}' was switched back in", A::name(self));
}

void join(Thread* thread)
{
    Thread* self = require_current("join");
    kernel::sync::assert_may_sleep("sched::join");
    if (thread == nullptr || thread == self || thread == g_boot || thread == g_idle)
        kernel::panic("Loom of Fate: '{}' cannot join that thread", A::name(self));
    const IrqState state = g_lock.acquire();
    if (A::detached(*thread) || A::joined(*thread))
        kernel::panic("Loom of Fate: thread '{}' is detached or already joined", A::name(thread));
    A::joined(*thread) = true;
    while (thread->state() != ThreadState::Exited) {
        A::joiner(*thread) = self;
        policy().block(A::entity(*self));
        switch_locked();
    }
    // It exited and switched away before we could take the lock: nothing runs on its stack.
    forget_locked(thread);
    g_lock.release(state);
    free_thread(thread);
}

void detach(Thread* thread)
{
    require_current("detach");
    if (thread == nullptr || thread == g_boot || thread == g_idle) return;
    const IrqState state = g_lock.acquire();
    if (A::detached(*thread) || A::joined(*thread))
        kernel::panic("Loom of Fate: thread '{}' is detached or already joined", A::name(thread));
    A::detached(*thread) = true;
    const bool exited = thread->state() == ThreadState::Exited;
    if (exited) forget_locked(thread);
    g_lock.release(state);
    if (exited) free_thread(thread);
}

void yield()
{
    if (!g_initialized) [[unlikely]]
        return;
    const IrqState state = g_lock.acquire();
    Thread* prev = g_current;
    switch_to_locked(prev, policy().yield_and_pick_next()); // = Policy::yield() + pick_next()
    g_lock.release(state);
}

void sleep_ticks(uint64_t ticks)
{
    Thread* self = require_current("sleep");
    kernel::sync::assert_may_sleep("sched::sleep_for");
    if (ticks == 0) {
        yield();
        return;
    }
    const IrqState state = g_lock.acquire();
    // +1: the current tick is already partly over, so waking at now + ticks could be early.
    if (policy().sleep_until(A::entity(*self), policy().now() + ticks + 1)) switch_locked();
    g_lock.release(state);
}

void sleep_for(uint64_t ms) { sleep_ticks(ms == 0 ? 0 : kernel::time::ns_to_ticks(ms * 1'000'000)); }

void set_priority(Thread* thread, Priority priority)
{
    if (thread == nullptr || thread == g_idle) return;
    auto guard = g_lock.lock();
    if (thread->state() == ThreadState::Exited) return;
    policy().set_priority(A::entity(*thread), priority);
    mirror_resched();
}

void set_quantum(Thread* thread, uint32_t quantum_ticks)
{
    if (thread == nullptr || thread == g_idle) return;
    auto guard = g_lock.lock();
    if (thread->state() == ThreadState::Exited) return;
    policy().set_quantum(A::entity(*thread), quantum_ticks);
}

size_t set_quantum_all(uint32_t quantum_ticks)
{
    auto guard = g_lock.lock();
    size_t changed = 0;
    for (Thread* t = g_all; t != nullptr; t = A::all_next(*t)) {
        if (t == g_idle || t->state() == ThreadState::Exited) continue;
        policy().set_quantum(A::entity(*t), quantum_ticks);
        ++changed;
    }
    return changed;
}

void park()
{
    Thread* self = require_current("park");
    kernel::sync::assert_may_sleep("sched::park");
    const IrqState state = g_lock.acquire();
    if (!A::unpark_token(*self)) {
        A::parked(*self) = true;
        policy().block(A::entity(*self));
        switch_locked();
        A::parked(*self) = false;
    }
    A::unpark_token(*self) = false;
    g_lock.release(state);
}

void unpark(Thread* thread)
{
    if (thread == nullptr) return;
    auto guard = g_lock.lock();
    if (A::parked(*thread) && thread->state() == ThreadState::Blocked) {
        A::unpark_token(*thread) = true;
        policy().wake(A::entity(*thread));
        mirror_resched();
    } else {
        A::unpark_token(*thread) = true;
    }
}

namespace {

// Lock held.
void fill_counters_locked(SchedulerCounters& out)
{
    const PolicyCounters& c = policy().counters();
    out.context_switches = c.context_switches;
    out.voluntary_switches = c.voluntary_switches;
    out.involuntary_switches = c.involuntary_switches;
    out.irq_exit_switches = g_irq_exit_switches;
    out.deferred_switches = g_deferred_switches;
    out.threads_spawned = g_spawned;
    out.threads_reaped = g_reaped;
    out.threads_live = g_live;
    out.idle_ticks = c.idle_ticks;
}

} // namespace

SchedulerCounters counters()
{
    SchedulerCounters out;
    if (!g_initialized) return out;
    auto guard = g_lock.lock();
    fill_counters_locked(out);
    return out;
}

bool sample(LoomSample& out, ThreadVisitor visit, void* context)
{
    if (!g_initialized) return false;
    auto guard = g_lock.lock();
    out.now_ticks = policy().now();
    fill_counters_locked(out.counters);
    out.counts = policy().counts();
    out.policy = policy().counters();
    if (visit != nullptr)
        for (Thread* t = g_all; t != nullptr; t = A::all_next(*t))
            visit(*t, context);
    return true;
}

} // namespace sched
