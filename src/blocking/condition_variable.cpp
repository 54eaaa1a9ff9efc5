// kernel::sync::ConditionVariable. See condition_variable.h.
//
// Kernel only; empty in the host test build until that build excludes this file by name.
#include "blocking/condition_variable.h"

#if defined(__AETHELOS_KERNEL__)

#include "lib/panic.h"
#include "sched/scheduler.h"

namespace kernel::sync {

CvStatus ConditionVariable::wait_impl(MutexGuard& guard, uint64_t deadline, const char* operation)
{
    assert_may_sleep(operation);
    Mutex* mutex = guard.mutex();
    if (mutex == nullptr || !mutex->held_by_current_thread()) {
        const sched::Thread* self = sched::current();
        kernel::panic("{} on '{}' by '{}' without owning the mutex ({})", operation, name(),
                      self != nullptr ? self->name() : "boot", mutex == nullptr ? "the guard is empty" : mutex->name());
    }
    // Queued first, then the mutex is released (after_queued): a notify by whoever takes the
    // mutex next finds us in the queue.
    bool unlocked = false;
    auto never = [] { return false; };
    auto unlock = [&] {
        mutex->release();
        unlocked = true;
    };
    const WaitResult result = m_waiters.wait_unless(never, unlock, deadline, operation);
    // A deadline already past returns before queueing, with the mutex still held.
    if (unlocked)
        mutex->acquire();
    return result == WaitResult::Woken ? CvStatus::NoTimeout : CvStatus::Timeout;
}

void ConditionVariable::wait(MutexGuard& guard) { (void)wait_impl(guard, kNoDeadline, "ConditionVariable::wait"); }

CvStatus ConditionVariable::wait_for(MutexGuard& guard, uint64_t ticks)
{
    return wait_impl(guard, deadline_after_ticks(ticks), "ConditionVariable::wait_for");
}

CvStatus ConditionVariable::wait_until(MutexGuard& guard, uint64_t deadline_tick)
{
    return wait_impl(guard, deadline_tick, "ConditionVariable::wait_until");
}

} // namespace kernel::sync

#endif // __AETHELOS_KERNEL__
