#pragma once
// The Loom of Fate's kernel-side state: one object bound to the scheduler lock. Internal to
// src/sched (the kernel glue behind scheduler.h); nothing outside src/sched includes it.
#include <stdint.h>

#include "lib/thread_safety.h"
#include "sched/policy.h"
#include "sched/thread.h"
#include "sched/trace.h"
#include "sync/irq_spinlock.h"

namespace sched::detail {

// Everything here is guarded by m_lock (interrupts off while held), except m_trace_on; the
// AETHELOS_GUARDED_BY annotations let clang check it (ctest check:thread-safety).
struct SchedulerState {
    kernel::sync::IrqSpinLock m_lock{"scheduler", kernel::sync::LockRank::kScheduler};
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

// An accessor: the functions that call it assert the lock themselves.
inline Policy& policy() AETHELOS_REQUIRES(g_sched.m_lock) { return g_sched.m_policy; }

} // namespace sched::detail
