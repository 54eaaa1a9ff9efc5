// In-kernel tests of the Loom of Fate on the real CPU at the configured tick rate (1000 Hz in the
// test image): preemption of threads that never yield, priority-preemption latency, critical
// sections under IrqSpinLock / PreemptGuard under preemption, sleep accuracy, and spawning,
// joining and reaping 500 threads with the Mana Pool's figures back where they started.
// They run in the boot thread "heartwood" (Normal priority).
#include <atomic>
#include <initializer_list>

#include "arch/cpu.h"
#include "diag/ktest.h"
#include "mm/frames.h"
#include "mm/kmalloc.h"
#include "sched/scheduler.h"
#include "sync/irq_spinlock.h"
#include "sync/preempt.h"
#include "time/time.h"

namespace {

namespace sync = kernel::sync;
using sched::Priority;
using sched::Thread;

uint64_t now_ticks() { return kernel::time::ticks(); }

// ---- Compute-bound threads ----

constexpr int kHogs = 3;
std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_hog_progress[kHogs];

void hog(void* arg)
{
    auto& progress = g_hog_progress[reinterpret_cast<uintptr_t>(arg)];
    while (!g_stop.load(std::memory_order_relaxed))
        progress.fetch_add(1, std::memory_order_relaxed); // never yields, never blocks
}

KTEST(sched, compute_bound_threads_are_preempted)
{
    KASSERT(sched::initialized());
    g_stop = false;
    Thread* hogs[kHogs] = {};
    const auto before = sched::counters();
    for (int i = 0; i < kHogs; ++i) {
        g_hog_progress[i] = 0;
        auto t = sched::spawn(&hog, reinterpret_cast<void*>(uintptr_t(i)), "hog", Priority::Normal);
        KASSERT(t.has_value());
        hogs[i] = *t;
    }
    sched::sleep_for(200); // the hogs share the CPU meanwhile; we come back once they are preempted
    uint64_t snapshot[kHogs];
    for (int i = 0; i < kHogs; ++i)
        snapshot[i] = g_hog_progress[i].load();
    sched::sleep_for(50);
    for (int i = 0; i < kHogs; ++i) {
        KEXPECT(snapshot[i] > 0);                               // every hog ran
        KEXPECT(g_hog_progress[i].load() > snapshot[i]);        // ... and keeps running
        KEXPECT(hogs[i]->entity().involuntary_switches() >= 2); // taken off the CPU by the timer
        KEXPECT(hogs[i]->entity().cpu_ticks() >= 20);           // about a third of 250 ticks each
    }
    g_stop = true;
    for (Thread* t : hogs)
        sched::join(t);
    const auto after = sched::counters();
    KEXPECT(after.irq_exit_switches > before.irq_exit_switches);
    KEXPECT(after.involuntary_switches >= before.involuntary_switches + 3 * 2);
}

// ---- Priority preemption latency ----

constexpr int kLatencyRounds = 20;
std::atomic<uint64_t> g_worst_late{0};
std::atomic<int> g_latency_rounds{0};

void latency_probe(void*)
{
    for (int i = 0; i < kLatencyRounds; ++i) {
        // sleep_ticks(n) wakes at the tick now + n + 1; a High thread must be on the CPU then,
        // although a Normal hog that never yields holds it.
        const uint64_t due = now_ticks() + 3 + 1;
        sched::sleep_ticks(3);
        const uint64_t now = now_ticks();
        const uint64_t late = now > due ? now - due : 0;
        if (late > g_worst_late.load())
            g_worst_late = late;
        g_latency_rounds.fetch_add(1);
    }
}

KTEST(sched, priority_preemption_within_one_tick)
{
    g_stop = false;
    g_worst_late = 0;
    g_latency_rounds = 0;
    g_hog_progress[0] = 0;
    auto h = sched::spawn(&hog, reinterpret_cast<void*>(uintptr_t(0)), "hog", Priority::Normal);
    KASSERT(h.has_value());
    auto probe = sched::spawn(&latency_probe, nullptr, "latency", Priority::High);
    KASSERT(probe.has_value());
    sched::join(*probe);
    g_stop = true;
    sched::join(*h);
    KEXPECT_EQ(g_latency_rounds.load(), kLatencyRounds);
    KEXPECT(g_worst_late.load() <= 1);
    KEXPECT(g_hog_progress[0].load() > 0);
}

// ---- Critical sections under preemption ----

constinit sync::IrqSpinLock g_test_lock{"ktest", sync::LockRank::kDevice};
int g_inside = 0; // guarded by g_test_lock
std::atomic<uint64_t> g_interleavings{0};
std::atomic<uint64_t> g_sections{0};
std::atomic<uint64_t> g_guarded_inside{0}; // PreemptGuard sections in progress

void lock_worker(void*)
{
    const uint64_t end = now_ticks() + 60;
    while (now_ticks() < end) {
        {
            kernel::sync::IrqSpinLock::Guard guard{g_test_lock};
            if (++g_inside != 1)
                g_interleavings.fetch_add(1);
            for (int spin = 0; spin < 2000; ++spin)
                arch::cpu_relax();
            if (g_inside != 1)
                g_interleavings.fetch_add(1);
            --g_inside;
        }
        {
            // A PreemptGuard section with interrupts on: the tick fires inside, but no other
            // thread may run until it ends.
            sync::PreemptGuard guard;
            if (g_guarded_inside.fetch_add(1) != 0)
                g_interleavings.fetch_add(1);
            const uint64_t until = now_ticks() + 1; // spans at least one tick
            while (now_ticks() <= until)
                arch::cpu_relax();
            if (g_guarded_inside.fetch_sub(1) != 1)
                g_interleavings.fetch_add(1);
        }
        g_sections.fetch_add(1);
    }
}

KTEST(sched, critical_sections_never_interleave)
{
    KASSERT(kernel::time::hz() >= 1000);
    g_interleavings = 0;
    g_sections = 0;
    const auto before = sched::counters();
    Thread* workers[4] = {};
    for (auto& w : workers) {
        auto t = sched::spawn(&lock_worker, nullptr, "locker", Priority::Normal, 1);
        KASSERT(t.has_value());
        w = *t;
    }
    for (Thread* w : workers)
        sched::join(w);
    const auto after = sched::counters();
    KEXPECT_EQ(g_interleavings.load(), 0u);
    KEXPECT(g_sections.load() > 0);
    KEXPECT(after.involuntary_switches > before.involuntary_switches); // preemption really happened
    KEXPECT(after.deferred_switches > before.deferred_switches);       // ... some deferred to guard ends
}

// ---- Destructors under guards ----

// Destructors started (high half) and finished (low half) in one word, so that the watcher sees
// both in one load: with two loads, a destructor that ran whole between them looked interrupted.
constexpr uint64_t kDtorStarted = uint64_t{1} << 32;
constexpr uint64_t kDtorFinished = 1;
std::atomic<uint64_t> g_dtors{0};
std::atomic<uint64_t> g_watch_mismatch{0};
std::atomic<uint64_t> g_watch_samples{0};
std::atomic<bool> g_watch_stop{false};

uint64_t dtors_started(uint64_t dtors) { return dtors >> 32; }
uint64_t dtors_finished(uint64_t dtors) { return dtors & 0xffff'ffff; }

// Its destructor is long (spans ticks) and runs entirely under a PreemptGuard.
struct SlowToDie {
    ~SlowToDie()
    {
        sync::PreemptGuard guard;
        g_dtors.fetch_add(kDtorStarted);
        const uint64_t until = now_ticks() + 2;
        while (now_ticks() <= until)
            arch::cpu_relax();
        g_dtors.fetch_add(kDtorFinished);
    }
};

void dying_worker(void*)
{
    for (int i = 0; i < 20; ++i) {
        SlowToDie object;
        (void)object;
    }
}

void watcher(void*)
{
    // Whenever it runs, no destructor may be midway.
    while (!g_watch_stop.load()) {
        const uint64_t dtors = g_dtors.load();
        if (dtors_started(dtors) != dtors_finished(dtors))
            g_watch_mismatch.fetch_add(1);
        g_watch_samples.fetch_add(1);
    }
}

KTEST(sched, destructors_under_guards_complete)
{
    g_dtors = 0;
    g_watch_mismatch = 0;
    g_watch_samples = 0;
    g_watch_stop = false;
    auto w = sched::spawn(&watcher, nullptr, "watcher", Priority::Normal, 1);
    KASSERT(w.has_value());
    auto d1 = sched::spawn(&dying_worker, nullptr, "dying", Priority::Normal, 1);
    auto d2 = sched::spawn(&dying_worker, nullptr, "dying", Priority::Normal, 1);
    KASSERT(d1.has_value() && d2.has_value());
    sched::join(*d1);
    sched::join(*d2);
    g_watch_stop = true;
    sched::join(*w);
    KEXPECT_EQ(dtors_finished(g_dtors.load()), 40u);
    KEXPECT_EQ(dtors_started(g_dtors.load()), 40u);
    KEXPECT_EQ(g_watch_mismatch.load(), 0u);
    KEXPECT(g_watch_samples.load() > 0);
}

// ---- Sleep ----

KTEST(sched, sleep_is_accurate_to_one_tick)
{
    for (uint64_t n : {1u, 2u, 5u, 17u, 50u}) {
        const uint64_t start = now_ticks();
        sched::sleep_ticks(n);
        const uint64_t slept = now_ticks() - start;
        // Wakes at the tick start + n + 1: at least n whole tick periods, at most one more. (+1 more
        // only if a tick slips in between reading `start` and the sleep taking the lock.)
        if (slept < n + 1 || slept > n + 2)
            ktest_ctx.failf(__FILE__, __LINE__, "sleep {} ticks took {}", n, slept);
    }
    const uint64_t start = now_ticks();
    sched::sleep_for(10);
    const uint64_t slept_ns = kernel::time::ticks_to_ns(now_ticks() - start);
    KEXPECT(slept_ns >= 10'000'000);
    // Up to three ticks over: 10 ms is a fraction over 10 PIT periods so it rounds up to 11 ticks,
    // the wake comes on the tick after those, and a tick may slip in before the sleep takes the lock.
    KEXPECT(slept_ns <= 10'000'000 + 3 * kernel::time::tick_period_ns());
}

// ---- 500 threads ----

constexpr int kManyThreads = 500;
constexpr int kDetached = 100;
Thread* g_many[kManyThreads];
std::atomic<int> g_ran{0};
mm::HeapStats g_heap_before;
mm::HeapStats g_heap_after;

void short_lived(void* arg)
{
    g_ran.fetch_add(1);
    if ((reinterpret_cast<uintptr_t>(arg) & 7) == 0)
        sched::yield();
}

KTEST(sched, spawn_join_reap_500_threads_returns_memory)
{
    g_ran = 0;
    mm::heap_shrink();
    mm::heap_stats(g_heap_before);
    const mm::FrameStats frames_before = mm::frames_stats();
    const auto stacks_before = arch::kernel_stack_stats();
    const auto before = sched::counters();

    for (int i = 0; i < kManyThreads; ++i) {
        auto t = sched::spawn(&short_lived, reinterpret_cast<void*>(uintptr_t(i)), "short", Priority::Normal);
        KASSERT(t.has_value());
        g_many[i] = *t;
        if (i < kDetached)
            sched::detach(*t);
    }
    for (int i = kDetached; i < kManyThreads; ++i)
        sched::join(g_many[i]);
    // Detached ones are freed by the reaper (the idle thread): give it time.
    for (int wait = 0; wait < 1000 && sched::counters().threads_reaped < before.threads_reaped + kManyThreads; ++wait)
        sched::sleep_ticks(1);
    const auto after = sched::counters();
    KEXPECT_EQ(g_ran.load(), kManyThreads);
    KEXPECT_EQ(after.threads_spawned - before.threads_spawned, uint64_t(kManyThreads));
    KEXPECT_EQ(after.threads_reaped - before.threads_reaped, uint64_t(kManyThreads));
    KEXPECT_EQ(after.threads_live, before.threads_live);
    KEXPECT_EQ(arch::kernel_stack_stats().in_use, stacks_before.in_use);
    KEXPECT(arch::kernel_stack_stats().peak > stacks_before.in_use);

    mm::heap_shrink();
    mm::heap_stats(g_heap_after);
    const mm::FrameStats frames_after = mm::frames_stats();
    KEXPECT_EQ(frames_after.bytes_used, frames_before.bytes_used);
    KEXPECT_EQ(g_heap_after.pages_held, g_heap_before.pages_held);
    KEXPECT_EQ(g_heap_after.bytes_used, g_heap_before.bytes_used);
    KEXPECT(frames_after.allocations > frames_before.allocations + kManyThreads * 4); // stacks came from frames
}

// ---- Switch counters ----

KTEST(sched, preemption_points_count_only_real_switches)
{
    // Reschedule requests at both preemption points while nothing else needs the CPU: the Loom
    // acts on each (a request) but keeps this thread (no switch).
    constexpr uint64_t kDeferred = 100;
    constexpr uint64_t kAtIrqExit = 5;
    const auto before = sched::counters();
    for (uint64_t i = 0; i < kDeferred; ++i) {
        sync::PreemptGuard guard;
        sync::set_need_resched(); // honoured when the guard ends
    }
    for (uint64_t i = 0; i < kAtIrqExit; ++i) {
        sync::set_need_resched();
        arch::wait_for_interrupt(); // honoured at the exit of this (or an earlier) interrupt
    }
    const auto after = sched::counters();
    // A tick that lands between the guard's count reaching zero and its resched check takes that
    // request at interrupt exit instead: each request is acted on at one point or the other.
    const uint64_t deferred = after.deferred_requests - before.deferred_requests;
    const uint64_t at_irq_exit = after.irq_exit_requests - before.irq_exit_requests;
    KEXPECT(deferred + at_irq_exit >= kDeferred + kAtIrqExit);
    KEXPECT(deferred > 0);
    KEXPECT(at_irq_exit >= kAtIrqExit);
    // Every switch counted at a preemption point is one the policy made.
    const uint64_t at_points =
        (after.deferred_switches - before.deferred_switches) + (after.irq_exit_switches - before.irq_exit_switches);
    if (at_points > after.context_switches - before.context_switches)
        ktest_ctx.failf(__FILE__, __LINE__, "{} switches counted at preemption points, {} context switches", at_points,
                        after.context_switches - before.context_switches);
}

// ---- Bookkeeping ----

void quick(void*) { }

KTEST(sched, api_basics)
{
    Thread* self = sched::current();
    KASSERT(self != nullptr);
    KEXPECT(self->state() == sched::ThreadState::Running);
    KEXPECT(sched::spawn(nullptr, nullptr, "x").error() == sched::SpawnError::InvalidArgument);
    auto t = sched::spawn(&quick, nullptr, "quick", Priority::Low, 3);
    KASSERT(t.has_value());
    KEXPECT((*t)->priority() == Priority::Low);
    KEXPECT_EQ((*t)->quantum_ticks(), 3u);
    KEXPECT((*t)->stack().valid());
    sched::set_priority(*t, Priority::High); // outranks us: runs (and ends) right here
    KEXPECT((*t)->state() == sched::ThreadState::Exited);
    sched::join(*t);
    sched::yield(); // nothing else ready at our level: returns
    KEXPECT(sched::current() == self);
}

} // namespace
