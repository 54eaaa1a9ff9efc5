// The Loom of Fate's kernel side: threads, switching, preemption points. See scheduler.h.
//
// Kernel glue (global instances, the arch hooks of sched/thread.h, mm's kernel heap); the host
// tests leave this file out and test the policy core (sched/policy.h) instead.
#include "sched/scheduler.h"

#include <bit>
#include <new>
#include <type_traits>

#include "arch/cpu.h"
#include "lib/log.h"
#include "lib/panic.h"
#include "lib/string.h"
#include "lib/thread_safety.h"
#include "mm/kmalloc.h"
#include "sched/policy.h"
#include "sched/scheduler_state.h"
#include "sched/trace.h"
#include "sync/irq_spinlock.h"
#include "sync/preempt.h"
#include "time/time.h"

namespace sched {

namespace detail {
constinit SchedulerState g_sched;
} // namespace detail

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
using detail::g_sched;
using detail::policy;
using kernel::sync::IrqSpinLock;
using kernel::sync::IrqState;

constinit mm::ObjectCache<Thread> g_threads; // has its own lock
// The running thread. Written under the lock with interrupts off; read lock-free by current()
// and the owner-name hook (a word-sized load on the one CPU).
Thread* volatile g_current = nullptr;
// Set once by init() (under the lock), then only read.
Thread* g_boot = nullptr;
Thread* g_idle = nullptr;
// Set once, under the lock, by init(); read lock-free (it never goes back).
bool g_initialized = false;

// The slow path of every hook: out of line and cold, so the hooks stay a load and a branch.
// Under the lock or in an IRQ hook with interrupts off (scheduler_state.h): not expressible as a
// REQUIRES.
[[gnu::cold, gnu::noinline]] void trace_record(trace::EventKind kind, uint64_t thread, uint64_t value,
                                               uint8_t detail = 0) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    trace::Event event;
    event.stamp = arch::read_cycle_counter();
    event.value = value;
    event.thread = static_cast<uint32_t>(thread);
    event.kind = kind;
    event.detail = detail;
    g_sched.m_trace_ring.push(event);
}

[[gnu::always_inline]] inline void trace_event(trace::EventKind kind, uint64_t thread, uint64_t value,
                                               uint8_t detail = 0)
{
    if (g_sched.m_trace_on) [[unlikely]]
        trace_record(kind, thread, value, detail);
}

template <typename Cause>
constexpr uint8_t cause_byte(Cause cause)
{
    return static_cast<uint8_t>(cause);
}

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

// Copies the policy's request into the per-CPU flag the preemption points look at. Lock held.
void mirror_resched() AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    if (policy().need_resched() && resched_allowed_locked())
        kernel::sync::set_need_resched();
}

void link_thread(Thread* t) AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    A::all_prev(*t) = nullptr;
    A::all_next(*t) = g_sched.m_all;
    if (g_sched.m_all != nullptr)
        A::all_prev(*g_sched.m_all) = t;
    g_sched.m_all = t;
    ++g_sched.m_live;
}

void unlink_thread(Thread* t) AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    if (A::all_prev(*t) != nullptr)
        A::all_next(*A::all_prev(*t)) = A::all_next(*t);
    else
        g_sched.m_all = A::all_next(*t);
    if (A::all_next(*t) != nullptr)
        A::all_prev(*A::all_next(*t)) = A::all_prev(*t);
    --g_sched.m_live;
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

// A switch at a preemption point or after block/sleep/exit: the policy's pick_next() decides.
void switch_locked(trace::SwitchCause cause = trace::SwitchCause::Block) AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    Thread* prev = g_current;
    switch_to_locked(prev, policy().pick_next(), cause);
}

// Detaches an exited thread from the Loom (lock held); the caller frees it after unlocking.
void forget_locked(Thread* t) AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    unlink_thread(t);
    policy().reap(A::entity(*t));
}

// Lock not held: the thread no longer runs and nothing refers to it.
void free_thread(Thread* t) AETHELOS_EXCLUDES(g_sched.m_lock)
{
    if (A::stack(*t).valid())
        arch::kernel_stack_free(A::stack(*t));
    if (auto destroyed = g_threads.destroy(t); !destroyed)
        kernel::panic("Loom of Fate: freeing thread {}: {}", static_cast<const void*>(t),
                      mm::to_string(destroyed.error()));
    const IrqState state = g_sched.m_lock.acquire();
    ++g_sched.m_reaped;
    g_sched.m_lock.release(state);
}

// Frees every detached thread that has exited.
void reap_zombies()
{
    for (;;) {
        const IrqState state = g_sched.m_lock.acquire();
        Thread* t = g_sched.m_zombies;
        if (t != nullptr) {
            g_sched.m_zombies = A::zombie_next(*t);
            forget_locked(t);
        }
        g_sched.m_lock.release(state);
        if (t == nullptr)
            return;
        free_thread(t);
    }
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

void irq_exit_point()
{
    if (!kernel::sync::need_resched() || kernel::sync::preempt_count() != 0)
        return;
    kernel::sync::clear_need_resched();
    preempt_switch(trace::SwitchCause::IrqExit);
}

void resched_hook() { preempt_switch(trace::SwitchCause::Deferred); }

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

// Around every real IRQ (interrupts off); installed only while tracing.
void trace_irq(uint8_t irq, bool entering)
{
    if (!g_sched.m_trace_on)
        return;
    Thread* running = g_current;
    trace_record(entering ? trace::EventKind::IrqEnter : trace::EventKind::IrqExit,
                 running != nullptr ? running->id() : 0, 0, irq);
}

const char* owner_name()
{
    Thread* t = g_current;
    return t != nullptr ? A::name(t) : nullptr;
}

// Every new thread's first code: the switch that brought it here holds the lock (a hand-off the
// analysis cannot follow).
[[noreturn]] void thread_start(void* arg) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    Thread* self = static_cast<Thread*>(arg);
    g_sched.m_lock.release(IrqState{true});
    A::entry (*self)(A::arg(*self));
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
lib::Expected<Thread*, SpawnError> create_thread(ThreadEntry entry, void* arg, const char* name, Priority priority,
                                                 uint32_t quantum_ticks)
{
    uint64_t id;
    {
        const IrqState state = g_sched.m_lock.acquire();
        id = ++g_sched.m_next_id;
        g_sched.m_lock.release(state);
    }
    Thread* t = g_threads.create(id, name, priority, quantum_ticks);
    if (t == nullptr)
        return lib::unexpected(SpawnError::OutOfMemory);
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

// init()'s first steps, before the Loom runs anything: no other thread or hook can look, so the
// guarded state is set up without the lock.
void rebuild_policy_before_start(const PolicyConfig& config) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    // Policy has no const or reference members, so g_sched.m_policy names the new object.
    g_sched.m_policy.~Policy();
    new (&g_sched.m_policy) Policy(config);
}

uint64_t next_id_before_start() AETHELOS_NO_THREAD_SAFETY_ANALYSIS { return ++g_sched.m_next_id; }

Thread* require_current(const char* operation)
{
    Thread* self = g_current;
    if (!g_initialized || self == nullptr)
        kernel::panic("Loom of Fate: {} before sched::init()", operation);
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

lib::Expected<Thread*, SpawnError> spawn(ThreadEntry entry, void* arg, const char* name, Priority priority,
                                         uint32_t quantum_ticks)
{
    if (!g_initialized)
        return lib::unexpected(SpawnError::NotInitialized);
    if (entry == nullptr)
        return lib::unexpected(SpawnError::InvalidArgument);
    // Detached threads are normally freed by the idle thread; under full load it may not run.
    reap_zombies();
    auto created = create_thread(entry, arg, name, priority, quantum_ticks);
    if (!created)
        return created;
    Thread* t = *created;
    {
        IrqSpinLock::Guard guard{g_sched.m_lock};
        link_thread(t);
        ++g_sched.m_spawned;
        policy().admit(A::entity(*t));
        if (g_sched.m_trace_on) [[unlikely]] {
            g_sched.m_trace_names.add(t->id(), A::name(t));
            Thread* parent = g_current;
            trace_record(trace::EventKind::Spawn, t->id(), parent != nullptr ? parent->id() : 0);
        }
        mirror_resched();
    } // a new thread that outranks us runs here (preempt_enable's resched hook)
    return t;
}

void exit()
{
    Thread* self = require_current("exit");
    if (self == g_boot || self == g_idle)
        kernel::panic("Loom of Fate: thread '{}' may not exit", A::name(self));
    (void)g_sched.m_lock.acquire();
    trace_event(trace::EventKind::Block, self->id(), 0, cause_byte(trace::BlockCause::Exit));
    policy().exit(A::entity(*self));
    if (Thread* joiner = A::joiner(*self))
        if (policy().wake(A::entity(*joiner)))
            trace_event(trace::EventKind::Wake, joiner->id(), self->id(), cause_byte(trace::WakeCause::Join));
    if (A::detached(*self)) {
        A::zombie_next(*self) = g_sched.m_zombies;
        g_sched.m_zombies = self;
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
    const IrqState state = g_sched.m_lock.acquire();
    if (A::detached(*thread) || A::joined(*thread))
        kernel::panic("Loom of Fate: thread '{}' is detached or already joined", A::name(thread));
    A::joined(*thread) = true;
    while (thread->state() != ThreadState::Exited) {
        A::joiner(*thread) = self;
        trace_event(trace::EventKind::Block, self->id(), 0, cause_byte(trace::BlockCause::Join));
        policy().block(A::entity(*self));
        switch_locked();
    }
    // It exited and switched away before we could take the lock: nothing runs on its stack.
    forget_locked(thread);
    g_sched.m_lock.release(state);
    free_thread(thread);
}

void detach(Thread* thread)
{
    require_current("detach");
    if (thread == nullptr || thread == g_boot || thread == g_idle)
        return;
    const IrqState state = g_sched.m_lock.acquire();
    if (A::detached(*thread) || A::joined(*thread))
        kernel::panic("Loom of Fate: thread '{}' is detached or already joined", A::name(thread));
    A::detached(*thread) = true;
    const bool exited = thread->state() == ThreadState::Exited;
    if (exited)
        forget_locked(thread);
    g_sched.m_lock.release(state);
    if (exited)
        free_thread(thread);
}

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

// ---- The trace ----

const char* to_string(TraceError error)
{
    switch (error) {
    case TraceError::NotInitialized: return "the Loom of Fate is not initialised";
    case TraceError::OutOfMemory: return "no memory for the trace ring";
    case TraceError::Busy: return "the trace is busy";
    }
    return "unknown trace error";
}

namespace {

TraceStatus trace_status_locked() AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    TraceStatus status;
    status.on = g_sched.m_trace_on;
    status.capacity = g_sched.m_trace_ring.capacity();
    status.held = g_sched.m_trace_ring.size();
    status.recorded = g_sched.m_trace_ring.pushed();
    status.overwritten = g_sched.m_trace_ring.overwritten();
    status.names_missed = g_sched.m_trace_names.missed();
    return status;
}

} // namespace

lib::Expected<TraceStatus, TraceError> trace_start()
{
    if (!g_initialized)
        return lib::unexpected(TraceError::NotInitialized);
    trace::Event* storage = nullptr;
    {
        IrqSpinLock::Guard guard{g_sched.m_lock};
        storage = g_sched.m_trace_storage;
    }
    if (storage == nullptr) { // first start: allocate outside the lock, keep it for good
        storage = static_cast<trace::Event*>(mm::kmalloc(kTraceRingBytes));
        if (storage == nullptr)
            return lib::unexpected(TraceError::OutOfMemory);
        bool kept = false;
        {
            IrqSpinLock::Guard guard{g_sched.m_lock};
            if (g_sched.m_trace_storage == nullptr) {
                g_sched.m_trace_storage = storage;
                kept = true;
            }
        }
        if (!kept)
            mm::kfree(storage); // another start won the race
    }
    IrqSpinLock::Guard guard{g_sched.m_lock};
    if (g_sched.m_trace_dumping)
        return lib::unexpected(TraceError::Busy);
    g_sched.m_trace_ring.attach(g_sched.m_trace_storage, kTraceCapacity);
    g_sched.m_trace_names.clear();
    for (Thread* t = g_sched.m_all; t != nullptr; t = A::all_next(*t))
        g_sched.m_trace_names.add(t->id(), A::name(t));
    g_sched.m_trace_on = true;
    trace_record(trace::EventKind::Start, g_current->id(), kernel::time::uptime_ns());
    arch::set_irq_observer(&trace_irq);
    return trace_status_locked();
}

TraceStatus trace_stop()
{
    IrqSpinLock::Guard guard{g_sched.m_lock};
    if (g_sched.m_trace_on) {
        trace_record(trace::EventKind::Stop, g_current != nullptr ? g_current->id() : 0, kernel::time::uptime_ns());
        g_sched.m_trace_on = false;
        arch::set_irq_observer(nullptr);
    }
    return trace_status_locked();
}

bool trace_release()
{
    trace::Event* storage;
    {
        IrqSpinLock::Guard guard{g_sched.m_lock};
        if (g_sched.m_trace_on || g_sched.m_trace_dumping)
            return false;
        storage = g_sched.m_trace_storage;
        g_sched.m_trace_storage = nullptr;
        g_sched.m_trace_ring.attach(nullptr, 0);
        g_sched.m_trace_names.clear();
    }
    if (storage != nullptr)
        mm::kfree(storage);
    return true;
}

TraceStatus trace_status()
{
    IrqSpinLock::Guard guard{g_sched.m_lock};
    return trace_status_locked();
}

// Reads the ring and the names without the lock, which g_sched.m_trace_dumping makes safe: the analysis
// cannot see that protocol.
lib::Expected<trace::JsonReport, TraceError> trace_write_json(lib::FormatSink& out) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    {
        IrqSpinLock::Guard guard{g_sched.m_lock};
        if (g_sched.m_trace_on || g_sched.m_trace_dumping)
            return lib::unexpected(TraceError::Busy);
        g_sched.m_trace_dumping = true;
    }
    // Off and marked as dumping: nothing writes the ring or the names until we are done.
    trace::JsonOptions options;
    const trace::JsonReport report =
        trace::write_chrome_json(g_sched.m_trace_ring, g_sched.m_trace_names, options, out);
    IrqSpinLock::Guard guard{g_sched.m_lock};
    g_sched.m_trace_dumping = false;
    return report;
}

} // namespace sched
