// Stress mode: a mixed load through the Loom of Fate with periodic checks. See stress.h.
#include "kernel/stress.h"

#include <atomic>

#include "arch/x86_64/qemu.h"
#include "kernel/stats.h"
#include "kernel/test_mode.h"
#include "kernel/time.h"
#include "lib/log.h"
#include "mm/frames.h"
#include "mm/kmalloc.h"
#include "sched/scheduler.h"
#include "sync/irq_spinlock.h"
#include "sync/mutex.h"

namespace kernel::stress {

namespace {

using sched::Priority;
namespace sync = kernel::sync;

constexpr uint64_t kCheckPeriodMs = 2000;

enum class Kind : uint8_t { Hog, Churn, Sleeper, Contend, ContendMutex, Spawner };

struct Worker {
    const char* name;
    Kind kind;
    Priority priority;
    bool needs_cpu; // sampled CPU time must grow every period
    sched::Thread* thread = nullptr;
    std::atomic<uint64_t> iterations { 0 };
    // The monitor's view (heartwood only).
    uint64_t cpu_ticks = 0;
    uint64_t last_iterations = 0;
    uint64_t last_cpu_ticks = 0;
};

Worker g_workers[] = {
    { "hog-normal-1", Kind::Hog, Priority::Normal, true },
    { "hog-normal-2", Kind::Hog, Priority::Normal, true },
    { "hog-low", Kind::Hog, Priority::Low, true },
    { "hog-idle", Kind::Hog, Priority::Idle, true },
    { "churn-normal", Kind::Churn, Priority::Normal, true },
    { "churn-high", Kind::Churn, Priority::High, false },
    { "sleeper-critical", Kind::Sleeper, Priority::Critical, false },
    { "sleeper-high", Kind::Sleeper, Priority::High, false },
    { "sleeper-normal", Kind::Sleeper, Priority::Normal, false },
    { "sleeper-low", Kind::Sleeper, Priority::Low, false },
    { "contend-normal-1", Kind::Contend, Priority::Normal, true },
    { "contend-normal-2", Kind::Contend, Priority::Normal, true },
    { "contend-low", Kind::Contend, Priority::Low, true },
    { "mutex-normal-1", Kind::ContendMutex, Priority::Normal, false },
    { "mutex-normal-2", Kind::ContendMutex, Priority::Normal, false },
    { "spawner", Kind::Spawner, Priority::Normal, false },
};
constexpr size_t kWorkerCount = sizeof(g_workers) / sizeof(g_workers[0]);

std::atomic<bool> g_stop { false };
// The first broken invariant a worker saw (a string literal); nullptr while all is well.
std::atomic<const char*> g_worker_failure { nullptr };
std::atomic<const char*> g_failed_worker { nullptr };

constinit sync::IrqSpinLock g_contend_lock { "stress contend", sync::LockRank::kDevice };
uint64_t g_shared_counter = 0; // guarded by g_contend_lock
bool g_inside = false;         // guarded by g_contend_lock

// The same under the sleeping Mutex (sync/mutex.h): waiters block instead of spinning.
constinit sync::Mutex g_contend_mutex { "stress mutex" };
uint64_t g_mutex_counter = 0; // guarded by g_contend_mutex
bool g_mutex_inside = false;  // guarded by g_contend_mutex
std::atomic<uint64_t> g_mutex_increments { 0 };

std::atomic<uint64_t> g_children_spawned { 0 };
std::atomic<uint64_t> g_children_ran { 0 };

void report(const Worker& w, const char* what)
{
    const char* expected = nullptr;
    if (g_worker_failure.compare_exchange_strong(expected, what)) g_failed_worker = w.name;
}

bool stopping() { return g_stop.load(std::memory_order_relaxed); }

uint64_t xorshift(uint64_t& s)
{
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

void hog(Worker& w)
{
    while (!stopping())
        w.iterations.fetch_add(1, std::memory_order_relaxed); // never yields, never blocks
}

// Blocks carry a pattern derived from their slot and size; checked before every free.
constexpr size_t kChurnSlots = 32;

uint8_t pattern(size_t slot, size_t size) { return static_cast<uint8_t>(0xa5 ^ slot ^ (size >> 3)); }

bool fill_and_check(uint8_t* p, size_t size, uint8_t value, bool check)
{
    // Only the ends and a middle byte: the point is churn, not memory bandwidth.
    const size_t probes[3] = { 0, size / 2, size - 1 };
    for (size_t i : probes) {
        if (check && p[i] != value) return false;
        p[i] = value;
    }
    return true;
}

void churn(Worker& w, uint64_t seed)
{
    void* slots[kChurnSlots] = {};
    size_t sizes[kChurnSlots] = {};
    uint64_t s = seed;
    uint64_t ops = 0;
    while (!stopping()) {
        const size_t i = xorshift(s) % kChurnSlots;
        if (slots[i] != nullptr) {
            if (!fill_and_check(static_cast<uint8_t*>(slots[i]), sizes[i], pattern(i, sizes[i]), true))
                report(w, "a churn block's contents changed while it was allocated");
            mm::kfree(slots[i]);
            slots[i] = nullptr;
        } else {
            const uint64_t r = xorshift(s);
            // Mostly small (slabs), some medium (buddy chunks), a few large (whole pages).
            const size_t size = (r % 16 == 0) ? 4096 + r % (60 * 1024) : (r % 4 == 0) ? 256 + r % 3840 : 1 + r % 256;
            void* p = mm::kmalloc(size);
            if (p == nullptr) {
                report(w, "kmalloc returned nullptr (out of memory under churn)");
            } else {
                fill_and_check(static_cast<uint8_t*>(p), size, pattern(i, size), false);
                slots[i] = p;
                sizes[i] = size;
            }
        }
        w.iterations.fetch_add(1, std::memory_order_relaxed);
        if (w.priority == Priority::High && (++ops % 256) == 0) sched::sleep_ticks(1);
    }
    for (size_t i = 0; i < kChurnSlots; ++i) {
        if (slots[i] == nullptr) continue;
        if (!fill_and_check(static_cast<uint8_t*>(slots[i]), sizes[i], pattern(i, sizes[i]), true))
            report(w, "a churn block's contents changed while it was allocated");
        mm::kfree(slots[i]);
    }
}

void sleeper(Worker& w, uint64_t seed)
{
    uint64_t s = seed;
    while (!stopping()) {
        const uint64_t ms = 1 + xorshift(s) % 20;
        const uint64_t before = kernel::time::ticks();
        sched::sleep_for(ms);
        const uint64_t slept = kernel::time::ticks() - before;
        if (slept < kernel::time::ns_to_ticks(ms * 1'000'000)) report(w, "sleep_for woke up early");
        w.iterations.fetch_add(1, std::memory_order_relaxed);
    }
}

std::atomic<uint64_t> g_contend_increments { 0 };

void contend(Worker& w)
{
    uint64_t mine = 0;
    while (!stopping()) {
        {
            auto guard = g_contend_lock.lock();
            if (g_inside) report(w, "two threads inside the contend critical section");
            g_inside = true;
            const uint64_t seen = g_shared_counter;
            for (int i = 0; i < 50; ++i)
                arch::cpu_relax();
            g_shared_counter = seen + 1;
            g_inside = false;
        }
        ++mine;
        w.iterations.fetch_add(1, std::memory_order_relaxed);
    }
    g_contend_increments.fetch_add(mine);
}

void contend_mutex(Worker& w)
{
    uint64_t mine = 0;
    while (!stopping()) {
        {
            auto guard = g_contend_mutex.lock();
            if (g_mutex_inside) report(w, "two threads inside the mutex critical section");
            g_mutex_inside = true;
            const uint64_t seen = g_mutex_counter;
            for (int i = 0; i < 200; ++i)
                arch::cpu_relax(); // long enough that the timer often preempts the owner here
            g_mutex_counter = seen + 1;
            g_mutex_inside = false;
        }
        ++mine;
        w.iterations.fetch_add(1, std::memory_order_relaxed);
    }
    g_mutex_increments.fetch_add(mine);
}

void child(void* arg)
{
    const size_t size = 16 + (reinterpret_cast<uintptr_t>(arg) % 2000);
    void* p = mm::kmalloc(size);
    if (p != nullptr) {
        static_cast<uint8_t*>(p)[size - 1] = 1;
        mm::kfree(p);
    }
    g_children_ran.fetch_add(1);
}

void spawner(Worker& w)
{
    uint64_t n = 0;
    while (!stopping()) {
        auto t = sched::spawn(&child, reinterpret_cast<void*>(uintptr_t(n)), "stress-child", Priority::Normal);
        if (!t) {
            report(w, "spawn failed");
            sched::sleep_for(10);
            continue;
        }
        g_children_spawned.fetch_add(1);
        if (n % 4 == 3)
            sched::detach(*t);
        else
            sched::join(*t);
        ++n;
        w.iterations.fetch_add(1, std::memory_order_relaxed);
    }
}

void worker_main(void* arg)
{
    Worker& w = *static_cast<Worker*>(arg);
    const uint64_t seed = 0x9e3779b97f4a7c15ull ^ (reinterpret_cast<uintptr_t>(arg) * 0x100000001b3ull);
    switch (w.kind) {
    case Kind::Hog: hog(w); break;
    case Kind::Churn: churn(w, seed | 1); break;
    case Kind::Sleeper: sleeper(w, seed | 1); break;
    case Kind::Contend: contend(w); break;
    case Kind::ContendMutex: contend_mutex(w); break;
    case Kind::Spawner: spawner(w); break;
    }
}

// ---- The monitor (the boot thread) ----

struct Footprint {
    uint64_t heap_bytes_used;
    uint64_t frames_bytes_outside_heap;
};

mm::HeapStats g_heap_scratch; // ~4 KiB

Footprint footprint()
{
    mm::heap_shrink(); // empty slabs and chunks are cache, not leaks
    mm::heap_stats(g_heap_scratch);
    const mm::FrameStats frames = mm::frames_stats();
    return { g_heap_scratch.bytes_used, frames.bytes_used - g_heap_scratch.bytes_total };
}

// Runs under the scheduler lock: copies the workers' CPU ticks.
void sample_worker(const sched::Thread& thread, void*)
{
    for (Worker& w : g_workers)
        if (w.thread == &thread) w.cpu_ticks = thread.cpu_ticks();
}

stats::Snapshot g_snapshot;
char g_failure[200];
bool g_failed = false;

template <typename... Args>
void fail(const char* fmt, const Args&... args)
{
    if (g_failed) return; // keep the first reason
    g_failed = true;
    lib::format(g_failure, sizeof(g_failure), fmt, args...);
    lib::log::print("stress: problem: {}\n", static_cast<const char*>(g_failure));
}

void check_snapshot(const stats::Snapshot& s)
{
    uint64_t by_state = 0, by_priority = 0;
    for (uint64_t n : s.threads_by_state)
        by_state += n;
    for (uint64_t n : s.threads_by_priority)
        by_priority += n;
    if (by_state != s.threads_total) fail("snapshot: per-state counts sum to {}, total {}", by_state, s.threads_total);
    if (by_priority != s.threads_total)
        fail("snapshot: per-priority counts sum to {}, total {}", by_priority, s.threads_total);
    if (s.row_count + s.rows_omitted != s.threads_total)
        fail("snapshot: {} rows + {} omitted for {} threads", s.row_count, s.rows_omitted, s.threads_total);
    if (s.memory.heap_used_bytes > s.memory.heap_total_bytes || s.memory.frames_used_bytes > s.memory.frames_total_bytes)
        fail("snapshot: memory used exceeds the total");
}

void check_memory_invariants()
{
    const mm::HeapCheckReport heap = mm::heap_check_invariants();
    if (!heap.ok())
        fail("heap invariants: {} violations, first {} at {:#x}", heap.violations, mm::to_string(heap.first),
             heap.first_address);
    const mm::FrameCheckReport frames = mm::frames_check_invariants();
    if (!frames.ok()) fail("frame allocator invariants: {} violations (zone {})", frames.violations, frames.first_bad_zone);
}

void check_progress()
{
    sched::LoomSample loom;
    (void)sched::sample(loom, &sample_worker, nullptr);
    for (Worker& w : g_workers) {
        const uint64_t it = w.iterations.load();
        if (it <= w.last_iterations)
            fail("{} made no progress in {} ms ({} iterations)", w.name, kCheckPeriodMs, it);
        if (w.needs_cpu && w.cpu_ticks <= w.last_cpu_ticks)
            fail("{} got no CPU time in {} ms ({} ticks)", w.name, kCheckPeriodMs, w.cpu_ticks);
        w.last_iterations = it;
        w.last_cpu_ticks = w.cpu_ticks;
    }
    if (const char* what = g_worker_failure.load()) fail("{}: {}", g_failed_worker.load(), what);
}

} // namespace

bool run(uint32_t seconds)
{
    using namespace lib::log;
    const uint32_t hz = kernel::time::hz();
    print("stress: weaving a mixed load for {} s at {} Hz: {} workers (hog, churn, sleeper, contend, mutex, spawner)\n",
          seconds, hz, kWorkerCount);
    sched::Thread* self = sched::current();
    const Priority own_priority = self->priority();
    sched::set_priority(self, Priority::High); // the monitor must not wait behind the hogs

    const Footprint before = footprint();
    stats::take_snapshot(g_snapshot);
    const uint64_t threads_before = g_snapshot.threads_total;

    g_stop = false;
    for (Worker& w : g_workers) {
        auto t = sched::spawn(&worker_main, &w, w.name, w.priority);
        if (!t) {
            fail("cannot spawn {}: {}", w.name, sched::to_string(t.error()));
            break;
        }
        w.thread = *t;
    }

    const uint64_t start = kernel::time::ticks();
    const uint64_t end = start + uint64_t(seconds) * hz;
    uint64_t checks = 0;
    while (!g_failed && kernel::time::ticks() < end) {
        const uint64_t left_ms = kernel::time::ticks_to_ns(end - kernel::time::ticks()) / 1'000'000;
        sched::sleep_for(left_ms < kCheckPeriodMs ? left_ms + 1 : kCheckPeriodMs);
        if (kernel::time::ticks() < end || left_ms >= kCheckPeriodMs / 2) check_progress();
        check_memory_invariants();
        stats::take_snapshot(g_snapshot);
        check_snapshot(g_snapshot);
        ++checks;
        char load[12], harmony[12];
        print("stress: {} s: {} threads, load {}, Harmony {}, {} switches, heap {} KiB in use\n",
              kernel::time::ticks_to_ns(kernel::time::ticks() - start) / 1'000'000'000, g_snapshot.threads_total,
              stats::ppm_to_percent(load, sizeof(load), g_snapshot.load_ppm),
              stats::ppm_to_percent(harmony, sizeof(harmony), g_snapshot.harmony_ppm), g_snapshot.context_switches,
              g_snapshot.memory.heap_used_bytes / 1024);
    }

    // Wind down: every worker ends and is joined, detached children are reaped.
    g_stop = true;
    for (Worker& w : g_workers)
        if (w.thread != nullptr) {
            sched::join(w.thread);
            w.thread = nullptr;
        }
    for (int wait = 0; wait < 2000; ++wait) {
        stats::take_snapshot(g_snapshot);
        if (g_snapshot.threads_total == threads_before) break;
        sched::sleep_ticks(1); // the idle thread reaps detached children
    }
    if (g_snapshot.threads_total != threads_before)
        fail("{} threads remain after the run, {} before", g_snapshot.threads_total, threads_before);

    {
        auto guard = g_contend_lock.lock();
        const uint64_t sum = g_contend_increments.load();
        if (g_shared_counter != sum) fail("shared counter {} but the contenders added {}", g_shared_counter, sum);
    }
    {
        auto guard = g_contend_mutex.lock();
        const uint64_t sum = g_mutex_increments.load();
        if (g_mutex_counter != sum) fail("mutex counter {} but the contenders added {}", g_mutex_counter, sum);
    }
    if (g_children_ran.load() != g_children_spawned.load())
        fail("{} children spawned but {} ran", g_children_spawned.load(), g_children_ran.load());
    check_memory_invariants();
    if (const char* what = g_worker_failure.load()) fail("{}: {}", g_failed_worker.load(), what);

    const Footprint after = footprint();
    if (after.heap_bytes_used != before.heap_bytes_used ||
        after.frames_bytes_outside_heap != before.frames_bytes_outside_heap)
        fail("memory did not return: heap bytes in use {} -> {}, frame bytes outside the heap {} -> {}",
             before.heap_bytes_used, after.heap_bytes_used, before.frames_bytes_outside_heap,
             after.frames_bytes_outside_heap);

    stats::take_snapshot(g_snapshot);
    stats::print_snapshot(g_snapshot, stats::Layout::Welcome);
    sched::set_priority(self, own_priority);

    uint64_t total_iterations = 0;
    for (const Worker& w : g_workers)
        total_iterations += w.iterations.load();
    if (g_failed) {
        print("stress: FAIL after {} checks: {}\n", checks, static_cast<const char*>(g_failure));
        print("0 passed, 1 failed\n");
        return false;
    }
    print("stress: PASS {} s, {} checks, {} workers, {} iterations, {} children, {} spinlock and {} mutex "
          "increments, memory back to {} heap bytes\n",
          seconds, checks, kWorkerCount, total_iterations, g_children_spawned.load(), g_contend_increments.load(),
          g_mutex_increments.load(), after.heap_bytes_used);
    print("1 passed, 0 failed\n");
    return true;
}

void run_and_exit(uint32_t seconds)
{
    const bool passed = run(seconds);
    arch::qemu_exit(passed ? kExitPass : kExitFail);
}

} // namespace kernel::stress
