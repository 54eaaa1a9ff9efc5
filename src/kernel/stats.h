#pragma once
// kernel::stats: one consistent statistics snapshot of the Heartwood — the Loom of Fate (threads,
// switches, fairness), the Attunement (interrupts per vector) and the Mana Pool (frames, heap).
//
//   static kernel::stats::Snapshot snap;     // ~7 KiB: static or kmalloc, not a small stack
//   kernel::stats::take_snapshot(snap);      // any thread, any time, interrupts on or off
//   kernel::stats::print_snapshot(snap, kernel::stats::Layout::Full);
//
// ## Consistency and why it cannot deadlock
// take_snapshot copies everything inside ONE critical section: it takes the stats lock (an
// IrqSpinLock, rank kStatsLockRank = 150), which first disables interrupts on this CPU, and then
// takes, one after the other and never two at once, the scheduler lock (rank 200, through
// sched::sample), the kernel-stack slot lock (350), the heap lock (300, mm::heap_stats) and the
// frame-allocator lock (400, mm::frames_stats; mm::heap_stats, too, reads the frame allocator's figures only
// after dropping the heap lock). Interrupt counts and the clock are read in the same section. So:
//   - the timer interrupt cannot fire while any of these locks is held by the snapshot (they are
//     all taken with interrupts already off), so it can never spin on a lock the code it
//     interrupted holds — the deadlock a stats call that took the scheduler lock with interrupts
//     on would meet;
//   - each inner lock is of higher rank than the stats lock and is released before the next is
//     taken, so the snapshot never waits for a lock while holding one another path could want
//     before it (debug builds check the ranks);
//   - on one CPU no other code runs during the section at all, so every figure belongs to the
//     same instant: per-state and per-priority counts sum to the total, rows match the counts.
// The only rule for callers: hold no spinlock of rank >= 150 when calling (no console or device
// lock; the debug rank check reports it), and do not call it from an NMI.
// Cost: interrupts stay off for one walk over the live threads plus the heap's statistics walk;
// Snapshot::interrupts_off_cycles records how long (TSC cycles).
//
// ## Definitions
//   CPU time       sampled: every timer tick is charged in full to the thread on the CPU when it
//                  fires (see sched/policy.h); cpu_ns = cpu_ticks * tick period.
//   idle / load    over the whole uptime (since the Loom started): idle_ppm = idle ticks / ticks,
//                  load_ppm = 1'000'000 - idle_ppm. Idle ticks are those charged to the idle thread.
//   Harmony        Jain's fairness index (sched::jain_index_ppm) of the lifetime CPU times of the
//                  threads that are Ready or Running (the idle thread excluded), computed per base
//                  priority. harmony_ppm is the member-weighted mean over the priorities that have
//                  at least two such threads (1'000'000 = perfectly fair; 1'000'000 when no
//                  priority has two). Lifetime CPU time makes it meaningful for threads that
//                  have been competing for about the same time (e.g. a set of equal hogs).
//   rows           the first kMaxThreadRows threads of the Loom's thread list (newest first);
//                  rows_omitted counts the rest.
#include <stddef.h>
#include <stdint.h>

#include "lib/format.h"
#include "sched/thread_state.h"

namespace kernel::stats {

inline constexpr size_t kMaxThreadRows = 64;
inline constexpr size_t kThreadNameBytes = 32;
// Vectors 0..47: the 32 CPU exceptions and the 16 PIC IRQs (timer = 32).
inline constexpr size_t kVectorCount = 48;
inline constexpr uint8_t kTimerVector = 32;
// Harmony is computed over at most this many threads per priority (the rest are left out).
inline constexpr size_t kHarmonyCapacity = 512;
inline constexpr uint32_t kPpm = 1'000'000;

struct ThreadRow {
    uint64_t id = 0;
    char name[kThreadNameBytes] = {};
    sched::ThreadState state = sched::ThreadState::Ready;
    sched::Priority priority = sched::Priority::Normal;
    bool boosted = false;     // holding a starvation boost
    bool idle_thread = false; // the Loom's own idle thread
    uint64_t cpu_ticks = 0;
    uint64_t cpu_ns = 0;
    uint64_t runs = 0; // times it was given the CPU
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    uint64_t switches() const { return voluntary_switches + involuntary_switches; }
};

struct MemorySummary {
    // Physical frames (the frame allocator).
    uint64_t frames_total_bytes = 0;
    uint64_t frames_used_bytes = 0;
    uint64_t frames_free_bytes = 0;
    uint64_t frames_peak_used_bytes = 0;
    // The kernel heap: bytes held from the frames, and of those handed out.
    uint64_t heap_total_bytes = 0;
    uint64_t heap_used_bytes = 0;
    uint64_t heap_free_bytes = 0;
    uint64_t heap_peak_used_bytes = 0;
    uint64_t heap_allocations = 0;
    uint64_t heap_frees = 0;
    uint64_t heap_failed_allocations = 0;
    // Kernel stacks (each kKernelStackBytes plus an unmapped guard page).
    uint32_t kernel_stacks_in_use = 0;
    uint32_t kernel_stacks_peak = 0;
};

struct Snapshot {
    bool loom_ready = false; // false before sched::init: the Loom fields are zero
    // Time.
    uint64_t uptime_ns = 0;
    uint64_t ticks = 0;
    uint32_t hz = 0;

    // Threads (the idle thread and exited-but-unreaped threads included).
    uint64_t threads_total = 0;
    uint64_t threads_by_state[sched::kThreadStateCount] = {};
    uint64_t threads_by_priority[sched::kPriorityCount] = {};
    uint64_t threads_boosted = 0;
    uint64_t threads_spawned = 0; // since boot (the boot thread and the idle thread excluded)
    uint64_t threads_reaped = 0;

    // Switches since the Loom started.
    uint64_t context_switches = 0;
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    uint64_t preemptions = 0; // involuntary with quantum left (a more urgent thread came)
    uint64_t quantum_expiries = 0;
    uint64_t irq_exit_requests = 0; // reschedule requests acted on at the interrupt-exit safe point
    uint64_t irq_exit_switches = 0; // ... of which switched to another thread
    uint64_t deferred_requests = 0; // reschedule requests acted on when preempt_enable() reached 0
    uint64_t deferred_switches = 0; // ... of which switched to another thread
    uint64_t boosts = 0;            // starvation boosts given
    uint64_t wakeups = 0;

    // CPU use since the Loom started.
    uint64_t loom_ticks = 0; // ticks the Loom has accounted
    uint64_t idle_ticks = 0;
    uint32_t idle_ppm = 0;
    uint32_t load_ppm = 0;

    // Harmony (see the definitions above).
    uint32_t harmony_ppm = kPpm;
    uint32_t harmony_threads = 0; // threads in the priorities that counted
    uint32_t harmony_by_priority_ppm[sched::kPriorityCount] = {kPpm, kPpm, kPpm, kPpm, kPpm};
    uint32_t harmony_members[sched::kPriorityCount] = {};

    // One row per thread.
    ThreadRow rows[kMaxThreadRows];
    size_t row_count = 0;
    size_t rows_omitted = 0;

    // Interrupts dispatched since boot.
    uint64_t interrupts[kVectorCount] = {};
    uint64_t interrupts_other = 0; // vectors 48..255 (the APIC's spurious vector 255)
    uint64_t interrupts_total = 0;

    MemorySummary memory;

    // How long interrupts were off while copying (TSC cycles), and how many snapshots have been
    // taken since boot (this one included).
    uint64_t interrupts_off_cycles = 0;
    uint64_t sequence = 0;
};

// Fills `out` (see the header comment for the guarantees). Works before sched::init and
// before the heap exists (those parts stay zero).
void take_snapshot(Snapshot& out);

// Text layouts, every line at most 79 columns so they read on an 80x25 screen.
enum class Layout : uint8_t {
    Welcome, // about 8 lines: time, threads, switches, Harmony, memory, interrupts
    Full,    // Welcome, then the thread table and the non-zero interrupt vectors
};
void format_snapshot(lib::FormatSink& sink, const Snapshot& snap, Layout layout);
// The thread table alone (header + up to max_rows rows + a "...and N more" line).
void format_thread_table(lib::FormatSink& sink, const Snapshot& snap, size_t max_rows = kMaxThreadRows);
// format_snapshot to every console (lib::log::write_raw).
void print_snapshot(const Snapshot& snap, Layout layout);

// "12.5%" for 125000 ppm (one decimal, rounded down); buf needs 8 bytes.
const char* ppm_to_percent(char* buf, size_t cap, uint32_t ppm);

} // namespace kernel::stats
