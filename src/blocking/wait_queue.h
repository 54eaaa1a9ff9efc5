#pragma once
// kernel::sync::WaitQueue: a FIFO of threads blocked until someone wakes them, the building block
// of the sleeping Mutex, Semaphore and ConditionVariable.
//
//   constinit kernel::sync::WaitQueue g_ready { "ready" };
//   g_ready.wait();                       // blocks until wake_one()/wake_all() picks this thread
//   if (g_ready.wait_for(5) == sync::WaitResult::TimedOut) { ... }
//   g_ready.wake_one();                   // the longest waiter
//
// ## No lost wake-ups
// A waiter is put in the queue under the queue's IrqSpinLock, the lock is released, and only then
// does it park (sched::park). A waker dequeues the waiter, marks it woken and unparks it, all
// under the same lock. park/unpark carry one wake token, so an unpark that lands between the
// release and the park makes the park return at once. Each queued waiter receives exactly one
// unpark (from a waker or from its timeout, decided under the lock), and it re-checks its own
// state under the lock before leaving, so it never returns while the waker still uses it.
//
// ## Memory
// Waiters are intrusive nodes on the waiting thread's own stack: waiting never allocates.
//
// ## Timeouts
// Time is counted in timer ticks (kernel::time). wait_for(n) waits at least n whole tick periods,
// like sched::sleep_ticks: it times out at the tick now + n + 1. wait_for(0) never blocks.
// Timed waiters also sit in one global list sorted by deadline, which a timer-tick listener
// (chained after the Loom of Fate's own, installed at the first timed wait) expires at their
// exact tick. [Interim: sched has no park-with-deadline yet; see wait_queue.cpp.]
//
// Lock order: the timeout list (rank 90) < every wait queue (LockRank::kWaitQueue) < the
// scheduler (a waker unparks while holding the queue lock). Two wait-queue locks are never held
// together. The queue must outlive its waiters.
//
// Kernel only (needs the Loom of Fate); the host tests leave wait_queue.cpp out.
#include <stddef.h>
#include <stdint.h>

#include "lib/intrusive_list.h"
#include "lib/thread_safety.h"
#include "sync/irq_spinlock.h"

namespace sched {
class Thread;
}

namespace kernel::sync {

enum class WaitResult : uint8_t {
    Woken,    // woken by wake_one/wake_all (or the caller's condition already held)
    TimedOut, // the deadline passed first
};

// "No deadline" for the *_until calls.
inline constexpr uint64_t kNoDeadline = UINT64_MAX;
// Rank of the global timeout list: below every wait queue, because the tick takes it first.
inline constexpr LockRank kWaitTimeoutRank = static_cast<LockRank>(90);

// The deadline tick for a wait of `ticks` tick periods starting now (saturating): now + ticks + 1,
// or now for 0 (a poll).
uint64_t deadline_after_ticks(uint64_t ticks);

class WaitQueue;

namespace detail {

// One blocked thread; lives on that thread's stack for the duration of the wait.
struct WaitNode {
    enum class State : uint8_t { Waiting, Woken, TimedOut };

    sched::Thread* thread = nullptr;
    WaitQueue* queue = nullptr;
    lib::IntrusiveListNode<WaitNode> link;         // the queue's FIFO (guarded by the queue's lock)
    lib::IntrusiveListNode<WaitNode> timeout_link; // the timeout list (guarded by its lock)
    uint64_t deadline = kNoDeadline;
    State state = State::Waiting; // guarded by the queue's lock
    bool in_timeout_list = false; // guarded by the timeout list's lock
};

class TimeoutList; // wait_queue.cpp

} // namespace detail

class WaitQueue {
public:
    // The queue seen with its lock held (see with_lock()). Each call asserts the lock, which also
    // tells the thread-safety analysis (it cannot see that only with_lock() makes a Locked).
    class Locked {
    public:
        // Wakes the longest waiter; returns its thread, nullptr if nobody waits.
        sched::Thread* wake_one()
        {
            m_queue.m_lock.assert_held();
            return m_queue.wake_one_locked();
        }
        size_t wake_all()
        {
            m_queue.m_lock.assert_held();
            return m_queue.wake_all_locked();
        }
        // The thread wake_one() would wake, nullptr if nobody waits.
        sched::Thread* front() const
        {
            m_queue.m_lock.assert_held();
            return m_queue.m_waiters.empty() ? nullptr : m_queue.m_waiters.front()->thread;
        }
        bool has_waiters() const
        {
            m_queue.m_lock.assert_held();
            return !m_queue.m_waiters.empty();
        }
        size_t waiter_count() const
        {
            m_queue.m_lock.assert_held();
            return m_queue.m_waiters.size();
        }

    private:
        friend class WaitQueue;
        explicit Locked(WaitQueue& queue) : m_queue(queue) { }
        Locked(const Locked&) = delete;
        Locked& operator=(const Locked&) = delete;
        WaitQueue& m_queue;
    };

    // `name` (a string literal) names the queue's lock in debug reports.
    constexpr explicit WaitQueue(const char* name = "wait queue") : m_lock(name, LockRank::kWaitQueue) { }
    WaitQueue(const WaitQueue&) = delete;
    WaitQueue& operator=(const WaitQueue&) = delete;

    // Blocks the calling thread until it is woken.
    void wait();
    // Blocks until woken or until the tick count reaches `deadline_tick` (kNoDeadline: never).
    WaitResult wait_until(uint64_t deadline_tick);
    // Blocks until woken or for at least `ticks` whole tick periods (0: returns TimedOut at once).
    WaitResult wait_for(uint64_t ticks);

    // Wake the longest waiter / every waiter. Callable from any context, interrupt handlers included.
    bool wake_one();
    size_t wake_all();

    // Snapshots (may change right after, unless called inside with_lock()).
    bool has_waiters() const;
    size_t waiter_count() const;
    const char* name() const { return m_lock.name(); }

    // ---- Building blocks for the primitives ----

    // Checks the caller's condition and waits for it, with no window for a lost wake-up:
    //   1. try_now() runs under the queue lock; true means "done" and returns Woken at once;
    //   2. otherwise, unless the deadline has passed, the caller is queued and the lock released;
    //   3. after_queued() (if given) runs, lock released, before blocking: the condition variable
    //      unlocks its mutex here, so a notify from then on finds the waiter queued;
    //   4. the caller blocks until woken (Woken) or the deadline (TimedOut).
    // A waker that changes the state try_now() looks at must do so under this queue's lock (in
    // with_lock()) for the check in 1 to be meaningful. `operation` names the call in the
    // assert_may_sleep report, which runs first.
    template <typename TryNow, typename AfterQueued>
    WaitResult wait_unless(TryNow& try_now, AfterQueued& after_queued, uint64_t deadline, const char* operation)
    {
        return wait_core(&call<TryNow, bool>, &try_now, &call<AfterQueued, void>, &after_queued, deadline, operation);
    }
    template <typename TryNow>
    WaitResult wait_unless(TryNow& try_now, uint64_t deadline, const char* operation)
    {
        return wait_core(&call<TryNow, bool>, &try_now, nullptr, nullptr, deadline, operation);
    }

    // Runs f(Locked&) with the queue lock held (interrupts off, preemption disabled): f must be
    // short and must not block. Returns what f returns.
    template <typename F>
    decltype(auto) with_lock(F&& f)
    {
        IrqSpinLock::Guard guard{m_lock};
        Locked locked(*this);
        return f(locked);
    }

private:
    friend class detail::TimeoutList;

    using TryFn = bool (*)(void*);
    using AfterFn = void (*)(void*);

    template <typename F, typename R>
    static R call(void* f)
    {
        return (*static_cast<F*>(f))();
    }

    WaitResult wait_core(TryFn try_now, void* try_context, AfterFn after_queued, void* after_context, uint64_t deadline,
                         const char* operation);
    sched::Thread* wake_one_locked() AETHELOS_REQUIRES(m_lock);
    size_t wake_all_locked() AETHELOS_REQUIRES(m_lock);
    // Called by the tick (timeout list lock held): times `node` out unless a waker got there first.
    void expire(detail::WaitNode& node);

    mutable IrqSpinLock m_lock;
    // FIFO: the longest waiter first.
    lib::IntrusiveList<detail::WaitNode, &detail::WaitNode::link> m_waiters AETHELOS_GUARDED_BY(m_lock);
};

} // namespace kernel::sync
