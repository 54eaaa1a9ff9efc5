#pragma once
// kernel::sync::ConditionVariable: waits for a condition guarded by a sync::Mutex.
//
//   constinit sync::Mutex g_lock { "queue" };
//   constinit sync::ConditionVariable g_not_empty { "queue not empty" };
//
//   auto guard = g_lock.lock();
//   g_not_empty.wait(guard, [] { return !g_queue.empty(); });   // unlocks while asleep
//   ...                                                          // locked again, condition true
//
//   { auto guard = g_lock.lock(); g_queue.push(x); }
//   g_not_empty.notify_one();
//
// wait() queues the caller on the condition variable *before* unlocking the mutex, so a
// notify_one() issued by anyone who took the mutex after that cannot be missed. Wake-ups may still
// be spurious from the caller's point of view (another thread may have consumed the condition
// before this one relocked the mutex): always wait in a loop, or use the predicate forms.
// Waiters are woken in FIFO order. notify_* never block; they need not hold the mutex (but a
// notify that must not be missed has to follow a change made under the mutex).
//
// Kernel only (needs the Loom of Fate).
#include <stdint.h>

#include "blocking/mutex.h"
#include "blocking/wait_queue.h"

namespace kernel::sync {

enum class CvStatus : uint8_t { NoTimeout, Timeout };

class ConditionVariable {
public:
    constexpr explicit ConditionVariable(const char* name = "condition variable") : m_waiters(name) { }
    ConditionVariable(const ConditionVariable&) = delete;
    ConditionVariable& operator=(const ConditionVariable&) = delete;

    // `guard` must own its mutex (panics otherwise). It owns it again when these return, also
    // after a timeout.
    void wait(MutexGuard& guard);
    // Timeout: at least `ticks` whole tick periods passed without a notify.
    CvStatus wait_for(MutexGuard& guard, uint64_t ticks);
    CvStatus wait_until(MutexGuard& guard, uint64_t deadline_tick);

    template <typename Predicate>
    void wait(MutexGuard& guard, Predicate predicate)
    {
        while (!predicate())
            wait(guard);
    }
    // The predicate's final value: false means the deadline passed with it still false.
    template <typename Predicate>
    bool wait_until(MutexGuard& guard, uint64_t deadline_tick, Predicate predicate)
    {
        while (!predicate())
            if (wait_until(guard, deadline_tick) == CvStatus::Timeout)
                return predicate();
        return true;
    }
    template <typename Predicate>
    bool wait_for(MutexGuard& guard, uint64_t ticks, Predicate predicate)
    {
        return wait_until(guard, deadline_after_ticks(ticks), predicate);
    }

    void notify_one() { (void)m_waiters.wake_one(); }
    void notify_all() { (void)m_waiters.wake_all(); }

    size_t waiter_count() const { return m_waiters.waiter_count(); }
    const char* name() const { return m_waiters.name(); }

private:
    CvStatus wait_impl(MutexGuard& guard, uint64_t deadline, const char* operation);

    WaitQueue m_waiters;
};

} // namespace kernel::sync
