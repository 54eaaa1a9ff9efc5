// kernel::sync::Mutex. See mutex.h.
//
// Kernel only (the Loom of Fate's threads); empty in the host test build until that build
// excludes this file by name.
#include "blocking/mutex.h"

#if defined(__AETHELOS_KERNEL__)

#include "lib/panic.h"
#include "lib/string.h"
#include "sched/scheduler.h"

namespace kernel::sync {
namespace {

const char* thread_name(const sched::Thread* thread) { return thread != nullptr ? thread->name() : "nobody"; }

sched::Thread* require_thread(const Mutex& mutex, const char* operation)
{
    sched::Thread* self = sched::current();
    if (self == nullptr)
        kernel::panic("{} of mutex '{}' before the Loom of Fate is up (sched::init)", operation, mutex.name());
    return self;
}

} // namespace

bool Mutex::held_by_current_thread() const
{
    sched::Thread* self = sched::current();
    return self != nullptr && owner() == self;
}

void Mutex::note_acquired([[maybe_unused]] std::source_location where)
{
#if AETHELOS_SYNC_CHECKS
    m_acquired_file = where.file_name();
    m_acquired_line = static_cast<uint32_t>(where.line());
#endif
}

void Mutex::acquire(std::source_location where)
{
    assert_may_sleep("Mutex::lock");
    sched::Thread* self = require_thread(*this, "lock");
    sched::Thread* expected = nullptr;
    if (m_owner.compare_exchange_strong(expected, self, std::memory_order_acquire, std::memory_order_relaxed)) {
        note_acquired(where);
        return;
    }
    if (expected == self)
        report_recursion(self, where);

    // Contended. Under the queue lock: take it if it became free, else queue up; release() then
    // makes us the owner before waking us (handoff).
    auto try_now = [&] {
        sched::Thread* free = nullptr;
        return m_owner.compare_exchange_strong(free, self, std::memory_order_acquire, std::memory_order_relaxed);
    };
    (void)m_waiters.wait_unless(try_now, kNoDeadline, "Mutex::lock");
    if (owner() != self)
        kernel::panic("mutex '{}': '{}' was woken as the new owner, but '{}' owns it", m_name, thread_name(self),
                      thread_name(owner()));
    note_acquired(where);
}

bool Mutex::try_acquire(std::source_location where)
{
    sched::Thread* self = require_thread(*this, "try_lock");
    sched::Thread* expected = nullptr;
    if (!m_owner.compare_exchange_strong(expected, self, std::memory_order_acquire, std::memory_order_relaxed))
        return false;
    note_acquired(where);
    return true;
}

void Mutex::release()
{
    sched::Thread* self = sched::current();
    sched::Thread* owner = m_owner.load(std::memory_order_relaxed);
    if (self == nullptr || owner != self)
        report_bad_release(self, owner);
#if AETHELOS_SYNC_CHECKS
    m_acquired_file = nullptr;
    m_acquired_line = 0;
#endif
    m_waiters.with_lock([&](WaitQueue::Locked& waiters) {
        // Handoff: the longest waiter owns it from here on; free only when nobody waits.
        sched::Thread* next = waiters.front();
        m_owner.store(next, std::memory_order_release);
        if (next != nullptr)
            (void)waiters.wake_one();
    });
}

void Mutex::report_recursion(sched::Thread* self, [[maybe_unused]] std::source_location where) const
{
#if AETHELOS_SYNC_CHECKS
    kernel::panic("recursive lock of mutex '{}' by '{}' at {}:{}: it already owns it (locked at {}:{}); "
                  "Mutex is not recursive",
                  m_name, thread_name(self), lib::short_path(where.file_name()), where.line(),
                  lib::short_path(m_acquired_file), m_acquired_line);
#else
    kernel::panic("recursive lock of mutex '{}' by '{}', which already owns it (Mutex is not recursive)", m_name,
                  thread_name(self));
#endif
}

void Mutex::report_bad_release(sched::Thread* self, sched::Thread* owner) const
{
    if (owner == nullptr)
        kernel::panic("unlock of mutex '{}' by '{}': it is not locked", m_name, thread_name(self));
#if AETHELOS_SYNC_CHECKS
    kernel::panic("unlock of mutex '{}' by '{}', which does not own it: '{}' owns it (locked at {}:{})", m_name,
                  thread_name(self), thread_name(owner), lib::short_path(m_acquired_file), m_acquired_line);
#else
    kernel::panic("unlock of mutex '{}' by '{}', which does not own it: '{}' owns it", m_name, thread_name(self),
                  thread_name(owner));
#endif
}

} // namespace kernel::sync

#endif // __AETHELOS_KERNEL__
