// In-kernel tests of the blocking primitives (sync::WaitQueue, Mutex, Semaphore,
// ConditionVariable) on the Loom of Fate, under 1000 Hz preemption with 1-tick quanta: mutual
// exclusion under contention, a bounded buffer with exact item accounting, condition-variable
// ping-pong, timeout accuracy, wake_all, and the Mana Pool's figures unchanged afterwards.
// They run in the boot thread "heartwood" (Normal priority).
#include <atomic>
#include <initializer_list>

#include "arch/cpu.h"
#include "blocking/condition_variable.h"
#include "blocking/mutex.h"
#include "blocking/semaphore.h"
#include "blocking/wait_queue.h"
#include "diag/ktest.h"
#include "mm/frames.h"
#include "mm/kmalloc.h"
#include "sched/scheduler.h"
#include "time/time.h"

namespace {

namespace sync = kernel::sync;
using sched::Priority;
using sched::Thread;

uint64_t now_ticks() { return kernel::time::ticks(); }

// Polls (sleeping) until `done()` or about `limit` ticks passed; returns done().
template <typename F>
bool eventually(F done, uint64_t limit = 2000)
{
    const uint64_t end = now_ticks() + limit;
    while (!done() && now_ticks() < end)
        sched::sleep_ticks(1);
    return done();
}

// ---- Mutex: mutual exclusion under contention and preemption ----

constexpr int kLockers = 4;
constexpr int kIncrements = 300;
constinit sync::Mutex g_counter_lock{"ktest counter"};
uint64_t g_counter = 0; // deliberately not atomic: guarded by g_counter_lock
int g_inside = 0;       // threads inside the critical section (must stay <= 1)
std::atomic<uint64_t> g_overlaps{0};
std::atomic<uint64_t> g_max_waiters{0};

std::atomic<bool> g_hog_stop{false};

void hog(void*)
{
    while (!g_hog_stop.load(std::memory_order_relaxed))
        arch::cpu_relax(); // never yields, never blocks
}

void locker(void*)
{
    for (int i = 0; i < kIncrements; ++i) {
        auto guard = g_counter_lock.lock();
        if (++g_inside != 1)
            g_overlaps.fetch_add(1);
        const uint64_t value = g_counter;
        // Give up the CPU midway: every other locker now runs and blocks on the mutex.
        if (i % 3 == 0)
            sched::yield();
        if (i % 25 == 0) {
            // Span a tick: with a 1-tick quantum and the hog ready, the timer preempts us here,
            // mutex held.
            const uint64_t tick = now_ticks();
            while (now_ticks() == tick)
                arch::cpu_relax();
        }
        g_counter = value + 1;
        const uint64_t waiters = g_counter_lock.waiter_count();
        if (waiters > g_max_waiters.load())
            g_max_waiters = waiters;
        if (--g_inside != 0)
            g_overlaps.fetch_add(1);
    }
}

KTEST(blocking, mutex_mutual_exclusion_under_contention)
{
    KASSERT(sched::initialized());
    g_counter = 0;
    g_inside = 0;
    g_overlaps = 0;
    g_max_waiters = 0;
    g_hog_stop = false;
    const auto before = sched::counters();
    auto spinner = sched::spawn(&hog, nullptr, "hog", Priority::Normal, 1);
    KASSERT(spinner.has_value());
    Thread* threads[kLockers] = {};
    for (auto& t : threads) {
        auto spawned = sched::spawn(&locker, nullptr, "locker", Priority::Normal, 1);
        KASSERT(spawned.has_value());
        t = *spawned;
    }
    for (Thread* t : threads)
        sched::join(t);
    g_hog_stop = true;
    sched::join(*spinner);
    const auto after = sched::counters();
    KEXPECT_EQ(g_counter, uint64_t(kLockers) * kIncrements);
    KEXPECT_EQ(g_overlaps.load(), 0u);
    KEXPECT(g_max_waiters.load() >= 1); // there really was contention (waiters slept in the queue)
    KEXPECT(after.involuntary_switches > before.involuntary_switches);
    KEXPECT(!g_counter_lock.is_locked());
    KEXPECT_EQ(g_counter_lock.waiter_count(), 0u);
}

std::atomic<int> g_probe_result{-1};

void try_lock_probe(void*)
{
    auto guard = g_counter_lock.try_lock();
    g_probe_result = guard.owns_lock() ? 1 : 0;
}

void blocking_locker(void*)
{
    auto guard = g_counter_lock.lock();
    ++g_counter;
}

KTEST(blocking, mutex_try_lock_owner_and_sleeping_waiter)
{
    g_counter = 0;
    {
        auto guard = g_counter_lock.lock();
        KEXPECT(g_counter_lock.held_by_current_thread());
        KEXPECT(g_counter_lock.owner() == sched::current());
        g_probe_result = -1;
        auto probe = sched::spawn(&try_lock_probe, nullptr, "probe", Priority::High);
        KASSERT(probe.has_value());
        sched::join(*probe);
        KEXPECT_EQ(g_probe_result.load(), 0); // owned by us: try_lock fails without blocking

        // A contender sleeps (Blocked), it does not spin.
        auto waiter = sched::spawn(&blocking_locker, nullptr, "waiter", Priority::Normal);
        KASSERT(waiter.has_value());
        KEXPECT(eventually([&] { return g_counter_lock.waiter_count() == 1; }));
        KEXPECT((*waiter)->state() == sched::ThreadState::Blocked);
        KEXPECT_EQ(g_counter, 0u);
        guard.unlock(); // handoff: the waiter owns it now
        KEXPECT(!guard.owns_lock());
        sched::join(*waiter);
        KEXPECT_EQ(g_counter, 1u);
    }
    KEXPECT(!g_counter_lock.is_locked());
    g_probe_result = -1;
    auto probe = sched::spawn(&try_lock_probe, nullptr, "probe", Priority::High);
    KASSERT(probe.has_value());
    sched::join(*probe);
    KEXPECT_EQ(g_probe_result.load(), 1);
    KEXPECT(!g_counter_lock.is_locked());
}

// ---- Semaphore: a bounded buffer ----

constexpr int kSlots = 4;
constexpr int kProducers = 3;
constexpr int kConsumers = 2;
constexpr int kItemsPerProducer = 200;
constexpr int kTotalItems = kProducers * kItemsPerProducer;

constinit sync::Semaphore g_free_slots{"ktest free slots", kSlots};
constinit sync::Semaphore g_full_slots{"ktest full slots", 0};
constinit sync::Mutex g_ring_lock{"ktest ring"};
uint64_t g_ring[kSlots];
int g_ring_head = 0; // all ring fields guarded by g_ring_lock
int g_ring_tail = 0;
int g_ring_size = 0;
int g_ring_overflows = 0;
uint64_t g_consumed_sum = 0;
int g_consumed = 0;

void producer(void* arg)
{
    const uint64_t base = reinterpret_cast<uintptr_t>(arg) * 1000000;
    for (int i = 1; i <= kItemsPerProducer; ++i) {
        g_free_slots.acquire();
        {
            auto guard = g_ring_lock.lock();
            if (g_ring_size >= kSlots)
                ++g_ring_overflows;
            g_ring[g_ring_tail] = base + i;
            g_ring_tail = (g_ring_tail + 1) % kSlots;
            ++g_ring_size;
        }
        g_full_slots.release();
        if (i % 16 == 0)
            sched::yield();
    }
}

void consumer(void* arg)
{
    const int quota = static_cast<int>(reinterpret_cast<uintptr_t>(arg));
    for (int i = 0; i < quota; ++i) {
        g_full_slots.acquire();
        {
            auto guard = g_ring_lock.lock();
            if (g_ring_size <= 0)
                ++g_ring_overflows;
            g_consumed_sum += g_ring[g_ring_head];
            g_ring_head = (g_ring_head + 1) % kSlots;
            --g_ring_size;
            ++g_consumed;
        }
        g_free_slots.release();
    }
}

KTEST(blocking, semaphore_bounded_buffer_exact_accounting)
{
    g_ring_head = g_ring_tail = g_ring_size = g_ring_overflows = 0;
    g_consumed_sum = 0;
    g_consumed = 0;
    Thread* threads[kProducers + kConsumers] = {};
    int n = 0;
    for (int c = 0; c < kConsumers; ++c) {
        const int quota = kTotalItems / kConsumers + (c == 0 ? kTotalItems % kConsumers : 0);
        auto t = sched::spawn(&consumer, reinterpret_cast<void*>(uintptr_t(quota)), "consumer", Priority::Normal, 1);
        KASSERT(t.has_value());
        threads[n++] = *t;
    }
    for (int p = 0; p < kProducers; ++p) {
        auto t = sched::spawn(&producer, reinterpret_cast<void*>(uintptr_t(p + 1)), "producer", Priority::Normal, 1);
        KASSERT(t.has_value());
        threads[n++] = *t;
    }
    for (Thread* t : threads)
        sched::join(t);

    uint64_t expected_sum = 0;
    for (int p = 1; p <= kProducers; ++p)
        expected_sum +=
            uint64_t(p) * 1000000 * kItemsPerProducer + uint64_t(kItemsPerProducer) * (kItemsPerProducer + 1) / 2;
    KEXPECT_EQ(g_consumed, kTotalItems);
    KEXPECT_EQ(g_consumed_sum, expected_sum);
    KEXPECT_EQ(g_ring_overflows, 0);
    KEXPECT_EQ(g_ring_size, 0);
    KEXPECT_EQ(g_free_slots.count(), uint64_t(kSlots));
    KEXPECT_EQ(g_full_slots.count(), 0u);
    KEXPECT_EQ(g_free_slots.waiter_count(), 0u);
    KEXPECT_EQ(g_full_slots.waiter_count(), 0u);
}

// Units handed out by release() and units given up by timeouts never mix: every unit released is
// either taken exactly once or still in the count.
constexpr int kTimedTakers = 4;
constexpr int kUnits = 150;
constinit sync::Semaphore g_units{"ktest units", 0};
std::atomic<int> g_units_taken{0};
std::atomic<int> g_units_timeouts{0};
std::atomic<bool> g_units_stop{false};

void timed_taker(void* arg)
{
    const uint64_t wait = 1 + reinterpret_cast<uintptr_t>(arg) % 3;
    while (!g_units_stop.load()) {
        if (g_units.acquire_for(wait))
            g_units_taken.fetch_add(1);
        else
            g_units_timeouts.fetch_add(1);
    }
}

KTEST(blocking, semaphore_timeouts_keep_exact_accounting)
{
    g_units_taken = 0;
    g_units_timeouts = 0;
    g_units_stop = false;
    Thread* takers[kTimedTakers] = {};
    for (int i = 0; i < kTimedTakers; ++i) {
        auto t = sched::spawn(&timed_taker, reinterpret_cast<void*>(uintptr_t(i)), "taker", Priority::Normal, 1);
        KASSERT(t.has_value());
        takers[i] = *t;
    }
    int total_released = 0;
    while (total_released < kUnits) {
        const int batch = 1 + total_released % 4;
        g_units.release(batch);
        total_released += batch;
        if (total_released % 3 == 0)
            sched::sleep_ticks(2); // let some waits time out in between
        else
            sched::yield();
    }
    // The takers keep trying until every unit is taken.
    KEXPECT(eventually([&] { return g_units_taken.load() == total_released; }));
    g_units_stop = true;
    for (Thread* t : takers)
        sched::join(t);
    KEXPECT_EQ(uint64_t(g_units_taken.load()) + g_units.count(), uint64_t(total_released));
    KEXPECT(g_units_timeouts.load() > 0);
    KEXPECT_EQ(g_units.count(), 0u);
    KEXPECT_EQ(g_units.waiter_count(), 0u);
}

// ---- Condition variable: ping-pong ----

constexpr int kRounds = 200;
constinit sync::Mutex g_ball_lock{"ktest ball"};
constinit sync::ConditionVariable g_ball_moved{"ktest ball moved"};
int g_turn = 0; // 0: ping's turn, 1: pong's; guarded by g_ball_lock
int g_hits[2] = {};
int g_out_of_turn = 0;

void player(void* arg)
{
    const int me = static_cast<int>(reinterpret_cast<uintptr_t>(arg));
    for (int i = 0; i < kRounds; ++i) {
        auto guard = g_ball_lock.lock();
        g_ball_moved.wait(guard, [me] { return g_turn == me; });
        if (g_turn != me || !g_ball_lock.held_by_current_thread())
            ++g_out_of_turn;
        ++g_hits[me];
        g_turn = 1 - me;
        g_ball_moved.notify_one();
    }
}

KTEST(blocking, condvar_ping_pong)
{
    g_turn = 0;
    g_hits[0] = g_hits[1] = 0;
    g_out_of_turn = 0;
    auto pong = sched::spawn(&player, reinterpret_cast<void*>(uintptr_t(1)), "pong", Priority::Normal, 1);
    auto ping = sched::spawn(&player, reinterpret_cast<void*>(uintptr_t(0)), "ping", Priority::Normal, 1);
    KASSERT(ping.has_value() && pong.has_value());
    sched::join(*ping);
    sched::join(*pong);
    KEXPECT_EQ(g_hits[0], kRounds);
    KEXPECT_EQ(g_hits[1], kRounds);
    KEXPECT_EQ(g_out_of_turn, 0);
    KEXPECT_EQ(g_turn, 0);
    KEXPECT_EQ(g_ball_moved.waiter_count(), 0u);
}

// ---- Timeouts ----

// A wait of n ticks times out at the tick start + n + 1 (like sched::sleep_ticks); +1 more only
// if a tick slips in between reading `start` and the wait computing its deadline.
bool within_one_tick(uint64_t n, uint64_t elapsed) { return elapsed >= n + 1 && elapsed <= n + 2; }

KTEST(blocking, wait_for_timeout_accuracy_within_one_tick)
{
    sync::WaitQueue queue{"ktest timeout"};
    for (uint64_t n : {1u, 2u, 5u, 17u, 40u}) {
        const uint64_t start = now_ticks();
        const sync::WaitResult result = queue.wait_for(n);
        const uint64_t elapsed = now_ticks() - start;
        KEXPECT(result == sync::WaitResult::TimedOut);
        if (!within_one_tick(n, elapsed))
            ktest_ctx.failf(__FILE__, __LINE__, "WaitQueue::wait_for({}) took {} ticks", n, elapsed);
    }
    KEXPECT(!queue.has_waiters());

    sync::Semaphore empty{"ktest empty", 0};
    for (uint64_t n : {1u, 3u, 10u}) {
        const uint64_t start = now_ticks();
        KEXPECT(!empty.acquire_for(n));
        const uint64_t elapsed = now_ticks() - start;
        if (!within_one_tick(n, elapsed))
            ktest_ctx.failf(__FILE__, __LINE__, "Semaphore::acquire_for({}) took {} ticks", n, elapsed);
    }

    sync::Mutex mutex{"ktest cv mutex"};
    sync::ConditionVariable cv{"ktest cv"};
    {
        auto guard = mutex.lock();
        const uint64_t start = now_ticks();
        KEXPECT(cv.wait_for(guard, 4) == sync::CvStatus::Timeout);
        const uint64_t elapsed = now_ticks() - start;
        if (!within_one_tick(4, elapsed))
            ktest_ctx.failf(__FILE__, __LINE__, "ConditionVariable::wait_for(4) took {} ticks", elapsed);
        KEXPECT(mutex.held_by_current_thread()); // relocked after the timeout
        KEXPECT(!cv.wait_for(guard, 2, [] { return false; }));
        KEXPECT(mutex.held_by_current_thread());
    }
    KEXPECT(!mutex.is_locked());

    // 0 ticks: a poll, never blocks.
    const uint64_t start = now_ticks();
    KEXPECT(queue.wait_for(0) == sync::WaitResult::TimedOut);
    KEXPECT(!empty.acquire_for(0));
    KEXPECT(now_ticks() - start <= 1);
}

std::atomic<bool> g_released{false};

void late_release(void* arg)
{
    sched::sleep_ticks(3);
    g_released = true;
    static_cast<sync::Semaphore*>(arg)->release();
}

KTEST(blocking, timed_wait_woken_before_deadline)
{
    sync::Semaphore sem{"ktest late", 0};
    g_released = false;
    auto t = sched::spawn(&late_release, &sem, "releaser", Priority::Normal);
    KASSERT(t.has_value());
    const uint64_t start = now_ticks();
    KEXPECT(sem.acquire_for(500));
    const uint64_t elapsed = now_ticks() - start;
    KEXPECT(g_released.load());
    KEXPECT(elapsed <= 3 + 3); // woken by the release (at about tick 4), not by the deadline
    sched::join(*t);
    // The expired entry is gone: a later timed wait still times out on its own deadline.
    const uint64_t again = now_ticks();
    KEXPECT(!sem.acquire_for(2));
    KEXPECT(within_one_tick(2, now_ticks() - again));
    KEXPECT_EQ(sem.count(), 0u);
}

// ---- wake_all ----

constexpr int kSleepers = 8;
constinit sync::WaitQueue g_gate{"ktest gate"};
std::atomic<int> g_woken{0};
std::atomic<int> g_gate_timeouts{0};

void gate_sleeper(void*)
{
    // The long deadline only bounds a failure; wake_all must come first.
    if (g_gate.wait_for(5000) == sync::WaitResult::Woken)
        g_woken.fetch_add(1);
    else
        g_gate_timeouts.fetch_add(1);
}

KTEST(blocking, wake_all_wakes_everyone)
{
    g_woken = 0;
    g_gate_timeouts = 0;
    Thread* threads[kSleepers] = {};
    for (int i = 0; i < kSleepers; ++i) {
        // Mixed priorities: wake_all must not depend on who runs first.
        auto t = sched::spawn(&gate_sleeper, nullptr, "sleeper", i % 2 == 0 ? Priority::Normal : Priority::High);
        KASSERT(t.has_value());
        threads[i] = *t;
    }
    KEXPECT(eventually([] { return g_gate.waiter_count() == kSleepers; }));
    for (Thread* t : threads)
        KEXPECT(t->state() == sched::ThreadState::Blocked);
    KEXPECT_EQ(g_woken.load(), 0);
    const uint64_t start = now_ticks();
    KEXPECT_EQ(g_gate.wake_all(), size_t(kSleepers));
    for (Thread* t : threads)
        sched::join(t);
    KEXPECT(now_ticks() - start < 100);
    KEXPECT_EQ(g_woken.load(), kSleepers);
    KEXPECT_EQ(g_gate_timeouts.load(), 0);
    KEXPECT(!g_gate.has_waiters());
    KEXPECT_EQ(g_gate.wake_all(), 0u);
    KEXPECT(!g_gate.wake_one());
}

// ---- Memory ----

void mixed_worker(void* arg)
{
    auto* sem = static_cast<sync::Semaphore*>(arg);
    for (int i = 0; i < 50; ++i) {
        {
            auto guard = g_counter_lock.lock();
            ++g_counter;
            if (i % 7 == 0)
                sched::yield();
        }
        if (sem->acquire_for(1))
            sem->release();
    }
}

KTEST(blocking, no_memory_leaked)
{
    // Warm-up outside the measurement: the first timed wait installs the tick listener (no
    // allocation, but keep the figures clean of any first-use effect).
    sync::Semaphore sem{"ktest mixed", 1};
    KEXPECT(sem.acquire_for(1));
    sem.release();

    mm::HeapStats heap_before;
    mm::HeapStats heap_after;
    mm::heap_shrink();
    mm::heap_stats(heap_before);
    const mm::FrameStats frames_before = mm::frames_stats();
    const auto counters_before = sched::counters();

    g_counter = 0;
    constexpr int kWorkers = 6;
    Thread* threads[kWorkers] = {};
    for (auto& t : threads) {
        auto spawned = sched::spawn(&mixed_worker, &sem, "mixed", Priority::Normal, 1);
        KASSERT(spawned.has_value());
        t = *spawned;
    }
    for (Thread* t : threads)
        sched::join(t);
    KEXPECT_EQ(g_counter, uint64_t(kWorkers) * 50);
    KEXPECT_EQ(sem.count(), 1u);

    mm::heap_shrink();
    mm::heap_stats(heap_after);
    const mm::FrameStats frames_after = mm::frames_stats();
    const auto counters_after = sched::counters();
    KEXPECT_EQ(counters_after.threads_live, counters_before.threads_live);
    KEXPECT_EQ(heap_after.bytes_used, heap_before.bytes_used);
    KEXPECT_EQ(heap_after.pages_held, heap_before.pages_held);
    KEXPECT_EQ(frames_after.bytes_used, frames_before.bytes_used);
}

} // namespace
