#pragma once
// kernel::sync::Mutex: a sleeping, non-recursive mutual-exclusion lock with an owner.
//
//   constinit kernel::sync::Mutex g_table_lock { "vfs table" };
//   {
//       auto guard = g_table_lock.lock();   // may block (sleep) until the mutex is free
//       ...                                 // may itself block, sleep, take other mutexes
//   }                                       // unlock: hands the mutex to the longest waiter
//   if (auto guard = g_table_lock.try_lock()) { ... }   // never blocks
//
// Only threads may use it (it needs the Loom of Fate's current thread), and only where sleeping is
// allowed: lock() first calls assert_may_sleep("Mutex::lock"), so locking it while holding a
// spinlock, with preemption disabled or in an interrupt handler is reported precisely (debug builds).
//
// ## Handoff, not barging
// unlock() with waiters makes the longest waiter the owner directly (under the wait queue's lock)
// and wakes it; the mutex is never free while anyone waits. So waiters get it in FIFO order and
// none can be starved by a thread that keeps re-locking; the price is that the new owner must be
// scheduled before anyone makes progress on the mutex (no "lock stealing" by a running thread).
// Uncontended lock/try_lock take the owner word with one compare-exchange; since the mutex is never
// free while waiters exist, this cannot jump the queue.
//
// ## Misuse (always checked: it is one comparison, and the alternative is a silent deadlock)
//   - lock() by the owner (recursion): kernel::panic naming the mutex, the owner and where it locked
//     it (the position is recorded in debug builds);
//   - unlock by a thread that does not own it, or of an unlocked mutex: kernel::panic naming both.
// An owner that exits without unlocking leaves the mutex locked forever.
#include <atomic>
#include <source_location>
#include <stdint.h>

#include "blocking/wait_queue.h"

namespace sched {
class Thread;
}

namespace kernel::sync {

class ConditionVariable;

class Mutex {
public:
    // Owns the mutex (or nothing, after a failed try_lock() or unlock()). Non-copyable and
    // non-movable, like IrqSpinLock::Guard.
    class [[nodiscard]] Guard {
    public:
        ~Guard()
        {
            if (m_mutex != nullptr)
                m_mutex->release();
        }
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;

        bool owns_lock() const { return m_mutex != nullptr; }
        explicit operator bool() const { return owns_lock(); }
        // Unlocks early; the destructor then does nothing.
        void unlock()
        {
            Mutex* mutex = m_mutex;
            m_mutex = nullptr;
            if (mutex != nullptr)
                mutex->release();
        }
        Mutex* mutex() const { return m_mutex; }

    private:
        friend class Mutex;
        friend class ConditionVariable;
        explicit Guard(Mutex* mutex) : m_mutex(mutex) { }

        Mutex* m_mutex;
    };

    // `name` (a string literal) appears in the reports.
    constexpr explicit Mutex(const char* name) : m_name(name), m_waiters(name) { }
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    [[nodiscard]] Guard lock(std::source_location where = std::source_location::current())
    {
        acquire(where);
        return Guard(this);
    }
    // Never blocks; an empty guard when another thread owns it. By the owner: an empty guard too
    // (not a report: probing is legitimate).
    [[nodiscard]] Guard try_lock(std::source_location where = std::source_location::current())
    {
        return Guard(try_acquire(where) ? this : nullptr);
    }

    // The manual form, for what a scope cannot express. Every acquire() / successful
    // try_acquire() needs exactly one release() by the same thread.
    void acquire(std::source_location where = std::source_location::current());
    [[nodiscard]] bool try_acquire(std::source_location where = std::source_location::current());
    void release();

    // Snapshots.
    bool is_locked() const { return owner() != nullptr; }
    sched::Thread* owner() const { return m_owner.load(std::memory_order_acquire); }
    // Whether the calling thread owns it (exact, unlike the snapshots: only the owner can change that).
    bool held_by_current_thread() const;
    size_t waiter_count() const { return m_waiters.waiter_count(); }
    const char* name() const { return m_name; }

private:
    friend class ConditionVariable;

    void note_acquired(std::source_location where);
    [[noreturn]] void report_recursion(sched::Thread* self, std::source_location where) const;
    [[noreturn]] void report_bad_release(sched::Thread* self, sched::Thread* owner) const;

    const char* m_name;
    std::atomic<sched::Thread*> m_owner{nullptr};
    WaitQueue m_waiters;
#if AETHELOS_SYNC_CHECKS
    // Where the owner locked it, for the reports. Written by the owner only.
    const char* m_acquired_file = nullptr;
    uint32_t m_acquired_line = 0;
#endif
};

using MutexGuard = Mutex::Guard;

} // namespace kernel::sync
