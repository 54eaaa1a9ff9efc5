// kernel::sync::Semaphore. See semaphore.h.
//
// Kernel only; empty in the host test build until that build excludes this file by name.
#include "blocking/semaphore.h"

#if defined(__AETHELOS_KERNEL__)

#include "lib/panic.h"

namespace kernel::sync {

bool Semaphore::acquire_with_deadline(uint64_t deadline, const char* operation)
{
    // Runs under the queue lock, like release(): a unit is taken here, or handed to us by release().
    auto try_now = [this] {
        if (m_count == 0)
            return false;
        --m_count;
        return true;
    };
    return m_waiters.wait_unless(try_now, deadline, operation) == WaitResult::Woken;
}

void Semaphore::acquire() { (void)acquire_with_deadline(kNoDeadline, "Semaphore::acquire"); }

bool Semaphore::acquire_for(uint64_t ticks)
{
    return acquire_with_deadline(deadline_after_ticks(ticks), "Semaphore::acquire_for");
}

bool Semaphore::acquire_until(uint64_t deadline_tick)
{
    return acquire_with_deadline(deadline_tick, "Semaphore::acquire_until");
}

bool Semaphore::try_acquire()
{
    return m_waiters.with_lock([this](WaitQueue::Locked&) {
        if (m_count == 0)
            return false;
        --m_count;
        return true;
    });
}

void Semaphore::release(uint64_t n)
{
    m_waiters.with_lock([this, n](WaitQueue::Locked& waiters) {
        uint64_t left = n;
        // Handoff: a woken waiter's acquire completes with the unit it was given. A waiter whose
        // timeout fired first is no longer in the queue, so it cannot be handed one.
        while (left != 0 && waiters.wake_one() != nullptr)
            --left;
        if (m_count > UINT64_MAX - left)
            kernel::panic("semaphore '{}': release({}) overflows the count {}", name(), n, m_count);
        m_count += left;
    });
}

uint64_t Semaphore::count() const
{
    return m_waiters.with_lock([this](WaitQueue::Locked&) { return m_count; });
}

} // namespace kernel::sync

#endif // __AETHELOS_KERNEL__
