#pragma once
// The Loom of Fate's kernel-side state: one object bound to the scheduler lock, the lock-free
// globals beside it, and the helpers the scheduler's files share (scheduler.cpp,
// scheduler_lifetime.cpp, scheduler_switching.cpp, scheduler_stats.cpp, scheduler_trace.cpp).
// Internal to src/sched: nothing outside src/sched includes it; everything else uses scheduler.h.
#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "arch/thread.h"
#include "lib/expected.h"
#include "lib/thread_safety.h"
#include "mm/kmalloc.h"
#include "sched/policy.h"
#include "sched/scheduler.h"
#include "sched/thread.h"
#include "sched/trace.h"
#include "sync/irq_spinlock.h"

namespace sched {

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

namespace detail {

using A = ThreadAccess;
using kernel::sync::IrqSpinLock;
using kernel::sync::IrqState;

// Everything here is guarded by m_lock (interrupts off while held), except m_trace_on; the
// AETHELOS_GUARDED_BY annotations let clang check it (ctest check:thread-safety).
struct SchedulerState {
    IrqSpinLock m_lock{"scheduler", kernel::sync::LockRank::kScheduler};
    // A valid, empty Policy from the start (so yield() before init() needs no check of its own:
    // it finds no current entity), rebuilt with the real configuration by init().
    Policy m_policy AETHELOS_GUARDED_BY(m_lock){};
    Thread* m_all AETHELOS_GUARDED_BY(m_lock) = nullptr;     // every live thread
    Thread* m_zombies AETHELOS_GUARDED_BY(m_lock) = nullptr; // detached and exited, for the reaper
    uint64_t m_next_id AETHELOS_GUARDED_BY(m_lock) = 0;
    uint64_t m_spawned AETHELOS_GUARDED_BY(m_lock) = 0;
    uint64_t m_reaped AETHELOS_GUARDED_BY(m_lock) = 0;
    uint64_t m_live AETHELOS_GUARDED_BY(m_lock) = 0;
    // Preemption points: requests acted on there, and the switches they led to (fewer: pick_next
    // may keep the running thread, e.g. when nothing else is ready).
    uint64_t m_irq_exit_requests AETHELOS_GUARDED_BY(m_lock) = 0;
    uint64_t m_irq_exit_switches AETHELOS_GUARDED_BY(m_lock) = 0;
    uint64_t m_deferred_requests AETHELOS_GUARDED_BY(m_lock) = 0;
    uint64_t m_deferred_switches AETHELOS_GUARDED_BY(m_lock) = 0;
    uint64_t m_held_back AETHELOS_GUARDED_BY(m_lock) = 0;
    // Written under the lock; timer_preemption() reads a snapshot.
    bool m_timer_preemption AETHELOS_GUARDED_BY(m_lock) = true;

    // ---- The trace (sched/trace.h). The hooks read m_trace_on without the lock: every hook runs
    // with interrupts off on the one CPU (under m_lock, or in an interrupt handler), and the flag
    // and the ring only change under m_lock, so no hook ever sees them half-changed, and no two
    // recordings interleave. The analysis sees the ring and the names as guarded by m_lock; the
    // two lock-free users (trace_record from an IRQ hook, the dump) opt out and say why.
    bool m_trace_on = false;
    bool m_trace_dumping AETHELOS_GUARDED_BY(m_lock) = false;
    // Allocated at the first trace_start(), then kept.
    trace::Event* m_trace_storage AETHELOS_GUARDED_BY(m_lock) = nullptr;
    trace::Ring m_trace_ring AETHELOS_GUARDED_BY(m_lock);
    trace::ThreadNames m_trace_names AETHELOS_GUARDED_BY(m_lock);
};

// A fixed address: no pointer to load on every switch.
extern constinit SchedulerState g_sched;

// Not guarded by g_sched.m_lock:
extern constinit mm::ObjectCache<Thread> g_threads; // has its own lock
// The running thread. Written under the lock with interrupts off; read lock-free by current()
// and the owner-name hook (a word-sized load on the one CPU).
extern Thread* volatile g_current;
// Set once by init() (under the lock), then only read.
extern Thread* g_boot;
extern Thread* g_idle;
// Set once, under the lock, by init(); read lock-free (it never goes back).
extern bool g_initialized;

// An accessor: the functions that call it assert the lock themselves.
inline Policy& policy() AETHELOS_REQUIRES(g_sched.m_lock) { return g_sched.m_policy; }

// ---- The trace hooks (scheduler_trace.cpp) ----

// The slow path of every hook: out of line and cold, so the hooks stay a load and a branch.
[[gnu::cold, gnu::noinline]] void trace_record(trace::EventKind kind, uint64_t thread, uint64_t value,
                                               uint8_t detail = 0);

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

// ---- scheduler.cpp ----

// The running thread; panics naming `operation` before init().
Thread* require_current(const char* operation);

// ---- Thread lifetime (scheduler_lifetime.cpp) ----

void link_thread(Thread* t) AETHELOS_REQUIRES(g_sched.m_lock);
// A Thread with a mapped stack whose first switch-in runs start(arg); not yet in the Loom.
lib::Expected<Thread*, SpawnError> create_thread(ThreadEntry entry, void* arg, const char* name, Priority priority,
                                                 uint32_t quantum_ticks);
[[noreturn]] void idle_main(void*);

// ---- Switching (scheduler_switching.cpp) ----

// Copies the policy's request into the per-CPU flag the preemption points look at.
void mirror_resched() AETHELOS_REQUIRES(g_sched.m_lock);
// A switch at a preemption point or after block/sleep/exit: the policy's pick_next() decides.
void switch_locked(trace::SwitchCause cause = trace::SwitchCause::Block) AETHELOS_REQUIRES(g_sched.m_lock);
// The hooks init() installs: interrupt exit, preempt_enable()'s resched hook, the timer tick.
void irq_exit_point();
void resched_hook();
void on_tick();

} // namespace detail
} // namespace sched
