// The Loom of Fate's thread lifetime: create, spawn, exit, join, detach, and the reaping and
// freeing of exited threads. Kernel glue beside scheduler.cpp (see there).
#include "sched/scheduler.h"

#include "arch/cpu.h"
#include "arch/thread.h"
#include "lib/panic.h"
#include "lib/string.h"
#include "lib/thread_safety.h"
#include "mm/kmalloc.h"
#include "sched/policy.h"
#include "sched/scheduler_state.h"
#include "sched/trace.h"
#include "sync/irq_spinlock.h"
#include "sync/preempt.h"

namespace sched {

using namespace detail;

Thread::Thread(uint64_t id, const char* name, Priority priority, uint32_t quantum_ticks)
    : m_entity(id, priority, quantum_ticks)
{
    lib::copy_string(m_name, sizeof(m_name), lib::StringView(name != nullptr ? name : "?"));
}

namespace detail {

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

} // namespace detail

namespace {

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

// Every new thread's first code: the switch that brought it here holds the lock (a hand-off the
// analysis cannot follow).
[[noreturn]] void thread_start(void* arg) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    Thread* self = static_cast<Thread*>(arg);
    g_sched.m_lock.release(IrqState{true});
    A::entry (*self)(A::arg(*self));
    sched::exit();
}

} // namespace

namespace detail {

[[noreturn]] void idle_main(void*)
{
    for (;;) {
        reap_zombies();
        arch::wait_for_interrupt(); // sti; hlt: a wake-up is an interrupt, whose exit switches
    }
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

} // namespace detail

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

} // namespace sched
