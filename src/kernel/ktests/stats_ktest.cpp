// In-kernel tests of the statistics snapshot (kernel/stats.h) under the 1000 Hz timer: snapshots
// from many threads at once never deadlock and always add up, the timer vector's count grows,
// Harmony (Jain's index) is ~1 for equal hogs and ~1/n when one thread got all the CPU, and the
// text layouts fit an 80x25 screen. They run in the boot thread "heartwood" (Normal priority).
#include <atomic>

#include "arch/cpu.h"
#include "diag/ktest.h"
#include "kernel/stats.h"
#include "sched/scheduler.h"
#include "sync/interrupt_guard.h"
#include "sync/preempt.h"
#include "time/time.h"

namespace {

namespace stats = kernel::stats;
using sched::Priority;
using sched::Thread;
using sched::ThreadState;

// Every consistency rule a snapshot must satisfy; returns the first broken one (nullptr: fine).
const char* inconsistency(const stats::Snapshot& s)
{
    if (!s.loom_ready)
        return "Loom not ready";
    uint64_t by_state = 0, by_priority = 0;
    for (uint64_t n : s.threads_by_state)
        by_state += n;
    for (uint64_t n : s.threads_by_priority)
        by_priority += n;
    if (by_state != s.threads_total)
        return "per-state counts do not sum to the total";
    if (by_priority != s.threads_total)
        return "per-priority counts do not sum to the total";
    if (s.row_count > s.threads_total)
        return "more rows than threads";
    if (s.row_count + s.rows_omitted != s.threads_total)
        return "rows + omitted != total";
    if (s.threads_by_state[sched::index_of(ThreadState::Running)] != 1)
        return "not exactly one thread Weaving";
    if (s.idle_ticks > s.loom_ticks)
        return "more idle ticks than ticks";
    if (s.memory.heap_used_bytes > s.memory.heap_total_bytes)
        return "heap used > heap total";
    if (s.memory.frames_used_bytes > s.memory.frames_total_bytes)
        return "frames used > frames total";
    if (s.memory.frames_used_bytes + s.memory.frames_free_bytes != s.memory.frames_total_bytes)
        return "frames used + free != total";
    uint64_t running_rows = 0;
    for (size_t i = 0; i < s.row_count; ++i)
        if (s.rows[i].state == ThreadState::Running)
            ++running_rows;
    if (s.rows_omitted == 0 && running_rows != 1)
        return "not exactly one Weaving row";
    return nullptr;
}

KTEST(stats, snapshot_is_consistent)
{
    static stats::Snapshot s;
    stats::take_snapshot(s);
    const char* problem = inconsistency(s);
    if (problem != nullptr)
        ktest_ctx.fail(__FILE__, __LINE__, problem);
    KEXPECT(s.threads_total >= 2); // heartwood and idle at least
    KEXPECT(s.hz == kernel::time::hz());
    KEXPECT(s.uptime_ns > 0);
    KEXPECT(s.memory.frames_total_bytes > 0 && s.memory.heap_total_bytes > 0);
    bool found_self = false, found_idle = false;
    for (size_t i = 0; i < s.row_count; ++i) {
        if (s.rows[i].id == sched::current()->id()) {
            found_self = true;
            KEXPECT(s.rows[i].state == ThreadState::Running);
        }
        if (s.rows[i].idle_thread)
            found_idle = true;
    }
    KEXPECT(found_self);
    KEXPECT(found_idle);
}

// ---- Many threads at once, under the timer ----

constexpr int kSnapshotters = 8;
stats::Snapshot g_snaps[kSnapshotters]; // ~7 KiB each: static, not on 16 KiB thread stacks
std::atomic<uint64_t> g_taken[kSnapshotters];
std::atomic<uint64_t> g_bad{0};
const char* g_first_bad = nullptr;
std::atomic<uint64_t> g_deadline{0};
std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_spin{0};

std::atomic<bool> g_go{false};

void snapshotter(void* arg)
{
    const auto i = reinterpret_cast<uintptr_t>(arg);
    while (!g_go.load())
        sched::sleep_ticks(1); // wait until all are spawned (the High ones would hold the CPU)
    while (kernel::time::ticks() < g_deadline.load()) {
        // A third of them also snapshot with interrupts off or preemption disabled: it must
        // not matter where the caller stands.
        if (i % 3 == 1) {
            kernel::sync::InterruptGuard off;
            stats::take_snapshot(g_snaps[i]);
        } else if (i % 3 == 2) {
            kernel::sync::PreemptGuard no_preempt;
            stats::take_snapshot(g_snaps[i]);
        } else {
            stats::take_snapshot(g_snaps[i]);
        }
        if (const char* problem = inconsistency(g_snaps[i])) {
            if (g_bad.fetch_add(1) == 0)
                g_first_bad = problem;
        }
        // The High ones rest now and then so the Normal and Low ones get turns too; the others
        // are preempted by the timer.
        if (g_taken[i].fetch_add(1) % 8 == 7 && i % 3 == 1)
            sched::sleep_ticks(1);
    }
}

void spinner(void*)
{
    while (!g_stop.load(std::memory_order_relaxed))
        g_spin.fetch_add(1, std::memory_order_relaxed);
}

KTEST(stats, concurrent_snapshots_never_deadlock_and_add_up)
{
    KASSERT(kernel::time::hz() >= 100);
    g_deadline = UINT64_MAX;
    g_go = false;
    g_bad = 0;
    g_first_bad = nullptr;
    g_stop = false;
    Thread* threads[kSnapshotters] = {};
    const Priority priorities[3] = {Priority::Normal, Priority::High, Priority::Low};
    for (int i = 0; i < kSnapshotters; ++i) {
        g_taken[i] = 0;
        auto t = sched::spawn(&snapshotter, reinterpret_cast<void*>(uintptr_t(i)), "snapshotter", priorities[i % 3]);
        KASSERT(t.has_value());
        threads[i] = *t;
    }
    auto hog = sched::spawn(&spinner, nullptr, "spinner", Priority::Normal);
    KASSERT(hog.has_value());
    g_deadline = kernel::time::ticks() + kernel::time::hz(); // one second of snapshotting
    g_go = true;

    // Bounded wait: 3 s past the deadline at most (a deadlock would stop the ticks' progress here).
    const uint64_t limit = g_deadline.load() + 3 * kernel::time::hz();
    while (kernel::time::ticks() < limit) {
        bool all_done = true;
        for (Thread* t : threads)
            if (t->state() != ThreadState::Exited)
                all_done = false;
        if (all_done)
            break;
        sched::sleep_ticks(5);
    }
    bool finished = true;
    for (Thread* t : threads)
        if (t->state() != ThreadState::Exited)
            finished = false;
    KEXPECT(finished); // if not, join below still waits for them, so report first
    g_stop = true;
    for (Thread* t : threads)
        sched::join(t);
    sched::join(*hog);

    uint64_t total = 0;
    for (int i = 0; i < kSnapshotters; ++i) {
        KEXPECT(g_taken[i].load() > 0); // every snapshotter got through, High and Low alike
        total += g_taken[i].load();
    }
    KEXPECT(total >= 100);
    KEXPECT_EQ(g_bad.load(), uint64_t(0));
    if (g_first_bad != nullptr)
        ktest_ctx.fail(__FILE__, __LINE__, g_first_bad);
    KEXPECT(g_spin.load() > 0);
}

KTEST(stats, timer_vector_count_increases)
{
    static stats::Snapshot a, b;
    stats::take_snapshot(a);
    sched::sleep_for(20);
    stats::take_snapshot(b);
    KEXPECT(b.interrupts[stats::kTimerVector] >= a.interrupts[stats::kTimerVector] + 15);
    KEXPECT(b.ticks >= a.ticks + 15);
    KEXPECT(b.uptime_ns > a.uptime_ns);
    KEXPECT(b.interrupts_total > a.interrupts_total);
    KEXPECT(b.loom_ticks > a.loom_ticks);
    KEXPECT(b.sequence > a.sequence);
}

// ---- Harmony ----

constexpr int kHogs = 4;
std::atomic<bool> g_hog_stop{false};

void low_hog(void*)
{
    while (!g_hog_stop.load(std::memory_order_relaxed))
        g_spin.fetch_add(1, std::memory_order_relaxed);
}

KTEST(stats, harmony_of_equal_hogs_is_near_one)
{
    g_hog_stop = false;
    Thread* hogs[kHogs] = {};
    for (auto& h : hogs) {
        auto t = sched::spawn(&low_hog, nullptr, "equal-hog", Priority::Low);
        KASSERT(t.has_value());
        h = *t;
    }
    sched::sleep_ticks(kernel::time::hz() * 2 / 5); // 400 ms: ~100 ticks each, 10-tick quanta
    static stats::Snapshot s;
    stats::take_snapshot(s);
    g_hog_stop = true;
    for (Thread* t : hogs)
        sched::join(t);
    const unsigned low = sched::index_of(Priority::Low);
    KEXPECT_EQ(s.harmony_members[low], uint32_t(kHogs));
    KEXPECT(s.harmony_by_priority_ppm[low] >= 900'000);
    KEXPECT(s.harmony_ppm >= 900'000);
    KEXPECT(s.harmony_threads >= uint32_t(kHogs));
}

KTEST(stats, harmony_of_one_hog_is_about_one_over_n)
{
    g_hog_stop = false;
    Thread* hogs[kHogs] = {};
    auto first = sched::spawn(&low_hog, nullptr, "greedy-hog", Priority::Low);
    KASSERT(first.has_value());
    hogs[0] = *first;
    sched::sleep_ticks(kernel::time::hz() / 5); // it alone takes 200 ms of CPU
    // The newcomers are Ready at Low with no CPU time yet: heartwood (Normal) keeps the CPU
    // until it sleeps, so the snapshot sees one thread with everything and n-1 with nothing.
    for (int i = 1; i < kHogs; ++i) {
        auto t = sched::spawn(&low_hog, nullptr, "late-hog", Priority::Low);
        KASSERT(t.has_value());
        hogs[i] = *t;
    }
    static stats::Snapshot s;
    stats::take_snapshot(s);
    g_hog_stop = true;
    for (Thread* t : hogs)
        sched::join(t);
    const unsigned low = sched::index_of(Priority::Low);
    KEXPECT_EQ(s.harmony_members[low], uint32_t(kHogs));
    // 1/n = 250000 ppm exactly when the newcomers have 0 ticks.
    KEXPECT(s.harmony_by_priority_ppm[low] >= 1'000'000 / kHogs - 10'000);
    KEXPECT(s.harmony_by_priority_ppm[low] <= 1'000'000 / kHogs + 50'000);
}

// ---- Layout ----

struct CheckingSink final : lib::FormatSink {
    size_t column = 0;
    size_t widest = 0;
    size_t lines = 0;
    char line[128] = {};
    char widest_line[128] = {};
    void write(const char* s, size_t n) override
    {
        for (size_t i = 0; i < n; ++i) {
            if (s[i] == '\n') {
                ++lines;
                column = 0;
                continue;
            }
            if (column < sizeof(line) - 1) {
                line[column] = s[i];
                line[column + 1] = 0;
            }
            if (++column > widest) {
                widest = column;
                for (size_t k = 0; k < sizeof(line); ++k)
                    widest_line[k] = line[k];
            }
        }
    }
};

KTEST(stats, layouts_fit_80_columns)
{
    static stats::Snapshot s;
    stats::take_snapshot(s);
    CheckingSink welcome;
    stats::format_snapshot(welcome, s, stats::Layout::Welcome);
    KEXPECT(welcome.widest <= 79);
    if (welcome.widest > 79)
        ktest_ctx.fail(__FILE__, __LINE__, welcome.widest_line);
    KEXPECT(welcome.lines >= 6 && welcome.lines <= 14); // leaves room for the banner on 25 rows
    KEXPECT_EQ(welcome.column, size_t(0));              // ends with a newline

    // Worst-case widths: huge counters everywhere.
    s.uptime_ns = 123ull * 3600 * 1'000'000'000;
    s.ticks = 999'999'999'999ull;
    s.threads_total = 99'999;
    for (auto& n : s.threads_by_state)
        n = 99'999;
    for (auto& n : s.threads_by_priority)
        n = 99'999;
    s.voluntary_switches = s.involuntary_switches = s.preemptions = 99'999'999;
    s.context_switches = s.quantum_expiries = s.wakeups = 999'999'999;
    s.interrupts_total = s.interrupts[32] = s.interrupts[33] = s.interrupts[36] = 99'999'999;
    s.memory.frames_total_bytes = s.memory.frames_used_bytes = 1000ull << 30;
    s.memory.heap_total_bytes = s.memory.heap_used_bytes = 1000ull << 30;
    s.memory.heap_peak_used_bytes = s.memory.frames_peak_used_bytes = 1000ull << 30;
    for (size_t i = 0; i < s.row_count; ++i) {
        s.rows[i].cpu_ns = 99'999'999'999'999ull;
        s.rows[i].voluntary_switches = 999'999'999;
    }
    CheckingSink full;
    stats::format_snapshot(full, s, stats::Layout::Full);
    KEXPECT(full.widest <= 80);
    if (full.widest > 80)
        ktest_ctx.fail(__FILE__, __LINE__, full.widest_line);
    KEXPECT(full.lines > welcome.lines);
}

} // namespace
