#pragma once
// kernel::sync::Semaphore: a counting semaphore whose waiters sleep.
//
//   constinit kernel::sync::Semaphore g_slots { "ring slots", 8 };
//   g_slots.acquire();                 // takes one unit, sleeping while there is none
//   if (g_slots.acquire_for(10)) ...   // gives up after at least 10 tick periods
//   g_slots.release(2);                // returns two units, waking up to two waiters
//
// release() hands units directly to waiters, longest waiter first (FIFO), and only adds what is
// left over to the count; a thread arriving meanwhile cannot take a unit meant for a waiter. So the
// units are accounted exactly: every acquire that returns true (or acquire()) got one unit from
// the initial count or from exactly one release. release() never blocks and may be called from
// interrupt handlers; the blocking calls first call assert_may_sleep().
//
// Kernel only (needs the Loom of Fate).
#include <stdint.h>

#include "blocking/wait_queue.h"

namespace kernel::sync {

class Semaphore {
public:
    // `name` (a string literal) names its wait queue in reports.
    constexpr explicit Semaphore(const char* name, uint64_t initial = 0) : m_count(initial), m_waiters(name) { }
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    void acquire();
    [[nodiscard]] bool try_acquire();
    // true: a unit was taken; false: none came within `ticks` whole tick periods (0: just try).
    [[nodiscard]] bool acquire_for(uint64_t ticks);
    // ... until the tick count reaches `deadline_tick`.
    [[nodiscard]] bool acquire_until(uint64_t deadline_tick);
    // Returns n units (panics if the count would overflow).
    void release(uint64_t n = 1);

    // Snapshots: free units and sleeping waiters (one of them is always 0).
    uint64_t count() const;
    size_t waiter_count() const { return m_waiters.waiter_count(); }
    const char* name() const { return m_waiters.name(); }

private:
    bool acquire_with_deadline(uint64_t deadline, const char* operation);

    uint64_t m_count; // guarded by m_waiters' lock
    mutable WaitQueue m_waiters;
};

} // namespace kernel::sync
