// kernel::sync::WaitQueue. See wait_queue.h.
//
// Kernel only: it parks and unparks Loom of Fate threads. Until the host test build excludes this
// file by name, the guard below keeps it empty there.
#include "blocking/wait_queue.h"

#if defined(__AETHELOS_KERNEL__)

#include "arch/cpu.h"
#include "lib/panic.h"
#include "sched/scheduler.h"
#include "time/time.h"

namespace kernel::sync {

using detail::WaitNode;
using State = WaitNode::State;

uint64_t deadline_after_ticks(uint64_t ticks)
{
    const uint64_t now = kernel::time::ticks();
    if (ticks == 0)
        return now;
    // +1, as sched::sleep_ticks: the current tick period is already partly over.
    return ticks >= kNoDeadline - now - 1 ? kNoDeadline - 1 : now + ticks + 1;
}

// ---- Timeouts ----
//
// Interim design: the Loom of Fate offers park() without a deadline, so timed waiters are kept in
// one list sorted by deadline and a tick listener, chained after the scheduler's (whose
// accounting runs first), times them out at their exact tick by unparking them. The tick pays one
// relaxed load when no deadline is due. Once sched grows park_until(deadline) (blocking in its own
// timer queue), this section goes away and wait_core() calls that instead.

namespace detail {

class TimeoutList {
public:
    // Both under s_lock.
    static void insert(WaitNode& node) AETHELOS_REQUIRES(s_lock)
    {
        s_lock.assert_held();
        // From the back: deadlines are mostly added in increasing order. FIFO among equals.
        WaitNode* after = s_list.back();
        while (after != nullptr && after->deadline > node.deadline)
            after = List::prev(*after);
        s_list.insert_before(after != nullptr ? List::next(*after) : s_list.front(), node);
        node.in_timeout_list = true;
        publish_next_deadline();
    }

    static void remove(WaitNode& node) AETHELOS_REQUIRES(s_lock)
    {
        s_lock.assert_held();
        s_list.remove(node);
        node.in_timeout_list = false;
        publish_next_deadline();
    }

    static void add(WaitNode& node)
    {
        install_tick_listener();
        IrqSpinLock::Guard guard{s_lock};
        insert(node);
    }

    static void cancel(WaitNode& node)
    {
        IrqSpinLock::Guard guard{s_lock};
        if (node.in_timeout_list)
            remove(node);
    }

    // The tick (interrupts off): the scheduler's accounting, then the waiters due at this tick.
    static void on_tick()
    {
        if (s_chained != nullptr)
            s_chained();
        const uint64_t now = kernel::time::ticks();
        if (now < s_next_deadline.load(std::memory_order_relaxed))
            return;
        IrqSpinLock::Guard guard{s_lock};
        while (s_list.front() != nullptr && s_list.front()->deadline <= now) {
            WaitNode* node = s_list.front();
            remove(*node);
            // The waiter cannot leave before it has taken s_lock (cancel), so node and its
            // queue are alive here.
            node->queue->expire(*node);
        }
    }

private:
    static void publish_next_deadline() AETHELOS_REQUIRES(s_lock)
    {
        s_lock.assert_held();
        s_next_deadline.store(s_list.empty() ? kNoDeadline : s_list.front()->deadline, std::memory_order_relaxed);
    }

    // Once, from the first timed wait. Interrupts off, so no tick sees the listener installed
    // without its chain (one CPU). A later set_tick_callback() that restores a callback saved
    // before this point would drop the listener: tick listeners must be stacked and unstacked
    // in order (the ktests that probe the tick do).
    static void install_tick_listener()
    {
        if (s_installed.load(std::memory_order_acquire))
            return;
        arch::InterruptGuard guard;
        if (s_installed.load(std::memory_order_relaxed))
            return;
        s_chained = kernel::time::set_tick_callback(&on_tick);
        s_installed.store(true, std::memory_order_release);
    }

    using List = lib::IntrusiveList<WaitNode, &WaitNode::timeout_link>;

    static constinit IrqSpinLock s_lock;
    static constinit List s_list AETHELOS_GUARDED_BY(s_lock); // sorted by deadline, FIFO among equals
    static constinit std::atomic<uint64_t> s_next_deadline;
    static constinit std::atomic<bool> s_installed;
    static kernel::time::TickCallback s_chained;
};

constinit IrqSpinLock TimeoutList::s_lock{"wait timeouts", kWaitTimeoutRank};
constinit TimeoutList::List TimeoutList::s_list;
constinit std::atomic<uint64_t> TimeoutList::s_next_deadline{kNoDeadline};
constinit std::atomic<bool> TimeoutList::s_installed{false};
kernel::time::TickCallback TimeoutList::s_chained = nullptr;

} // namespace detail

// ---- The queue ----

sched::Thread* WaitQueue::wake_one_locked()
{
    m_lock.assert_held();
    WaitNode* node = m_waiters.pop_front();
    if (node == nullptr)
        return nullptr;
    sched::Thread* thread = node->thread;
    node->state = State::Woken;
    // Still under our lock: the waiter re-checks its state under it, so it cannot leave (and its
    // thread cannot end) before this unpark is done.
    sched::unpark(thread);
    return thread;
}

size_t WaitQueue::wake_all_locked()
{
    m_lock.assert_held();
    size_t woken = 0;
    while (wake_one_locked() != nullptr)
        ++woken;
    return woken;
}

void WaitQueue::expire(WaitNode& node)
{
    IrqSpinLock::Guard guard{m_lock};
    if (node.state != State::Waiting)
        return; // a waker got there first; it unparks
    m_waiters.remove(node);
    node.state = State::TimedOut;
    sched::unpark(node.thread);
}

WaitResult WaitQueue::wait_core(TryFn try_now, void* try_context, AfterFn after_queued, void* after_context,
                                uint64_t deadline, const char* operation)
{
    assert_may_sleep(operation);
    sched::Thread* self = sched::current();
    if (self == nullptr)
        kernel::panic("{} on wait queue '{}' before the Loom of Fate is up (sched::init)", operation, name());

    WaitNode node;
    node.thread = self;
    node.queue = this;
    node.deadline = deadline;
    {
        const IrqState state = m_lock.acquire();
        if (try_now != nullptr && try_now(try_context)) {
            m_lock.release(state);
            return WaitResult::Woken;
        }
        if (deadline != kNoDeadline && kernel::time::ticks() >= deadline) {
            m_lock.release(state);
            return WaitResult::TimedOut;
        }
        m_waiters.push_back(node);
        m_lock.release(state);
    }
    // A deadline that passes in between is caught by the very next tick.
    if (deadline != kNoDeadline)
        detail::TimeoutList::add(node);
    if (after_queued != nullptr)
        after_queued(after_context);

    // Exactly one unpark is addressed to this node; park() until it arrived. A stale token from
    // elsewhere only costs one more round.
    State result;
    for (;;) {
        sched::park();
        const IrqState state = m_lock.acquire();
        result = node.state;
        m_lock.release(state);
        if (result != State::Waiting)
            break;
    }
    if (deadline != kNoDeadline)
        detail::TimeoutList::cancel(node);
    return result == State::Woken ? WaitResult::Woken : WaitResult::TimedOut;
}

void WaitQueue::wait() { (void)wait_core(nullptr, nullptr, nullptr, nullptr, kNoDeadline, "WaitQueue::wait"); }

WaitResult WaitQueue::wait_until(uint64_t deadline_tick)
{
    return wait_core(nullptr, nullptr, nullptr, nullptr, deadline_tick, "WaitQueue::wait_until");
}

WaitResult WaitQueue::wait_for(uint64_t ticks)
{
    return wait_core(nullptr, nullptr, nullptr, nullptr, deadline_after_ticks(ticks), "WaitQueue::wait_for");
}

bool WaitQueue::wake_one()
{
    IrqSpinLock::Guard guard{m_lock};
    return wake_one_locked() != nullptr;
}

size_t WaitQueue::wake_all()
{
    IrqSpinLock::Guard guard{m_lock};
    return wake_all_locked();
}

bool WaitQueue::has_waiters() const
{
    IrqSpinLock::Guard guard{m_lock};
    return !m_waiters.empty();
}

size_t WaitQueue::waiter_count() const
{
    IrqSpinLock::Guard guard{m_lock};
    return m_waiters.size();
}

} // namespace kernel::sync

#endif // __AETHELOS_KERNEL__
