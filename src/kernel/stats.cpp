// The statistics snapshot and its text layouts. See stats.h for the locking argument.
#include "kernel/stats.h"

#include "arch/cpu.h"
#include "arch/x86_64/interrupts.h" // interrupt_count: the per-vector counters of interrupt_dispatch
#include "lib/log.h"
#include "lib/span.h"
#include "lib/string.h"
#include "mm/frames.h"
#include "mm/kmalloc.h"
#include "sched/policy.h"
#include "sched/scheduler.h"
#include "sync/irq_spinlock.h"
#include "time/time.h"

namespace kernel::stats {

namespace {

using sched::kPriorityCount;
using sched::kThreadStateCount;

// Below the scheduler (200), so the snapshot can take the Loom, heap and frame locks inside it.
constexpr auto kStatsLockRank = static_cast<kernel::sync::LockRank>(150);

// Guards the scratch below and serialises snapshots. Held with interrupts off.
constinit kernel::sync::IrqSpinLock g_lock{"stats", kStatsLockRank};
mm::HeapStats g_heap_scratch; // ~4 KiB: too big for the callers' stacks
uint64_t g_harmony_values[kPriorityCount][kHarmonyCapacity];
size_t g_harmony_count[kPriorityCount];
uint64_t g_sequence = 0;

struct VisitState {
    Snapshot* out;
};

// Runs under the scheduler lock: only copies.
void visit_thread(const sched::Thread& thread, void* context)
{
    Snapshot& out = *static_cast<VisitState*>(context)->out;
    const sched::SchedEntity& e = thread.entity();
    const unsigned prio = sched::index_of(e.base_priority());
    const bool competing = e.state() == sched::ThreadState::Ready || e.state() == sched::ThreadState::Running;
    if (competing && !e.is_idle_thread() && prio < kPriorityCount && g_harmony_count[prio] < kHarmonyCapacity)
        g_harmony_values[prio][g_harmony_count[prio]++] = e.cpu_ticks();

    if (out.row_count >= kMaxThreadRows) {
        ++out.rows_omitted;
        return;
    }
    ThreadRow& row = out.rows[out.row_count++];
    row.id = e.id();
    lib::copy_string(row.name, sizeof(row.name), lib::StringView(thread.name()));
    row.state = e.state();
    row.priority = e.base_priority();
    row.boosted = e.boosted();
    row.idle_thread = e.is_idle_thread();
    row.cpu_ticks = e.cpu_ticks();
    row.runs = e.runs();
    row.voluntary_switches = e.voluntary_switches();
    row.involuntary_switches = e.involuntary_switches();
}

void compute_harmony(Snapshot& out)
{
    uint64_t weighted = 0;
    uint64_t members = 0;
    for (unsigned p = 0; p < kPriorityCount; ++p) {
        const size_t n = g_harmony_count[p];
        out.harmony_members[p] = static_cast<uint32_t>(n);
        out.harmony_by_priority_ppm[p] = sched::jain_index_ppm(lib::Span<const uint64_t>(g_harmony_values[p], n));
        if (n >= 2) {
            weighted += static_cast<uint64_t>(out.harmony_by_priority_ppm[p]) * n;
            members += n;
        }
    }
    out.harmony_threads = static_cast<uint32_t>(members);
    out.harmony_ppm = members == 0 ? kPpm : static_cast<uint32_t>((weighted + members / 2) / members);
}

void fill_memory(MemorySummary& m)
{
    if (mm::frames_ready()) {
        const mm::FrameStats frames = mm::frames_stats();
        m.frames_total_bytes = frames.bytes_total;
        m.frames_used_bytes = frames.bytes_used;
        m.frames_free_bytes = frames.bytes_free;
        m.frames_peak_used_bytes = frames.peak_bytes_used;
    }
    if (mm::heap_ready()) {
        mm::heap_stats(g_heap_scratch);
        m.heap_total_bytes = g_heap_scratch.bytes_total;
        m.heap_used_bytes = g_heap_scratch.bytes_used;
        m.heap_free_bytes = g_heap_scratch.bytes_free;
        m.heap_peak_used_bytes = g_heap_scratch.peak_bytes_used;
        m.heap_allocations = g_heap_scratch.allocations;
        m.heap_frees = g_heap_scratch.frees;
        m.heap_failed_allocations = g_heap_scratch.failed_allocations;
    }
}

uint32_t ratio_ppm(uint64_t part, uint64_t whole)
{
    if (whole == 0)
        return 0;
    if (part >= whole)
        return kPpm;
    return static_cast<uint32_t>(kernel::time::mul_div(part, kPpm, whole));
}

} // namespace

void take_snapshot(Snapshot& out)
{
    out = Snapshot{};
    kernel::sync::IrqSpinLock::Guard guard{g_lock}; // interrupts off from here to the end of the function
    const uint64_t start = arch::read_cycle_counter();
    out.sequence = ++g_sequence;

    out.ticks = kernel::time::ticks();
    out.uptime_ns = kernel::time::uptime_ns();
    out.hz = kernel::time::hz();

    for (unsigned p = 0; p < kPriorityCount; ++p)
        g_harmony_count[p] = 0;
    VisitState state{&out};
    sched::LoomSample loom;
    out.loom_ready = sched::sample(loom, &visit_thread, &state);
    if (out.loom_ready) {
        out.threads_total = loom.counts.total;
        for (unsigned i = 0; i < kThreadStateCount; ++i)
            out.threads_by_state[i] = loom.counts.by_state[i];
        for (unsigned i = 0; i < kPriorityCount; ++i)
            out.threads_by_priority[i] = loom.counts.by_priority[i];
        out.threads_boosted = loom.counts.boosted;
        out.threads_spawned = loom.counters.threads_spawned;
        out.threads_reaped = loom.counters.threads_reaped;
        out.context_switches = loom.policy.context_switches;
        out.voluntary_switches = loom.policy.voluntary_switches;
        out.involuntary_switches = loom.policy.involuntary_switches;
        out.preemptions = loom.policy.preemptions;
        out.quantum_expiries = loom.policy.quantum_expiries;
        out.irq_exit_requests = loom.counters.irq_exit_requests;
        out.irq_exit_switches = loom.counters.irq_exit_switches;
        out.deferred_requests = loom.counters.deferred_requests;
        out.deferred_switches = loom.counters.deferred_switches;
        out.boosts = loom.policy.boosts;
        out.wakeups = loom.policy.wakeups;
        out.loom_ticks = loom.policy.ticks;
        out.idle_ticks = loom.policy.idle_ticks;
        out.idle_ppm = ratio_ppm(out.idle_ticks, out.loom_ticks);
        out.load_ppm = out.loom_ticks == 0 ? 0 : kPpm - out.idle_ppm;
        for (size_t i = 0; i < out.row_count; ++i)
            out.rows[i].cpu_ns = kernel::time::ticks_to_ns(out.rows[i].cpu_ticks);
        compute_harmony(out);
        const arch::KernelStackStats stacks = arch::kernel_stack_stats();
        out.memory.kernel_stacks_in_use = stacks.in_use;
        out.memory.kernel_stacks_peak = stacks.peak;
    }

    for (unsigned v = 0; v < 256; ++v) {
        const uint64_t count = arch::interrupt_count(static_cast<uint8_t>(v));
        if (v < kVectorCount)
            out.interrupts[v] = count;
        else
            out.interrupts_other += count;
        out.interrupts_total += count;
    }

    fill_memory(out.memory);
    out.interrupts_off_cycles = arch::read_cycle_counter() - start;
}

// ---- Text ---------------------------------------------------------------------------------------

const char* ppm_to_percent(char* buf, size_t cap, uint32_t ppm)
{
    if (ppm > kPpm)
        ppm = kPpm;
    lib::format(buf, cap, "{}.{}%", ppm / 10'000, (ppm / 1'000) % 10);
    return buf;
}

namespace {

// "1.5 GiB", "12.3 MiB", "640 KiB", "512 B": one decimal above KiB, rounded down.
void write_bytes(lib::FormatSink& sink, uint64_t bytes)
{
    constexpr uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
    if (bytes >= kGiB)
        lib::format_to(sink, "{}.{} GiB", bytes / kGiB, (bytes % kGiB) * 10 / kGiB);
    else if (bytes >= kMiB)
        lib::format_to(sink, "{}.{} MiB", bytes / kMiB, (bytes % kMiB) * 10 / kMiB);
    else if (bytes >= kKiB)
        lib::format_to(sink, "{} KiB", bytes / kKiB);
    else
        lib::format_to(sink, "{} B", bytes);
}

// Uptime as "2 h 03 min 04.512 s" / "3 min 04.512 s" / "4.512 s".
void write_duration(lib::FormatSink& sink, uint64_t ns)
{
    const uint64_t ms_total = ns / 1'000'000;
    const uint64_t ms = ms_total % 1000;
    const uint64_t s_total = ms_total / 1000;
    const uint64_t s = s_total % 60, min = (s_total / 60) % 60, h = s_total / 3600;
    if (h > 0)
        lib::format_to(sink, "{} h {:02} min {:02}.{:03} s", h, min, s, ms);
    else if (min > 0)
        lib::format_to(sink, "{} min {:02}.{:03} s", min, s, ms);
    else
        lib::format_to(sink, "{}.{:03} s", s, ms);
}

uint64_t in_state(const Snapshot& snap, sched::ThreadState state)
{
    return snap.threads_by_state[sched::index_of(state)];
}

const char* vector_label(unsigned v)
{
    switch (v) {
    case 32: return "timer";
    case 33: return "keyboard";
    case 35: return "COM2";
    case 36: return "COM1";
    case 39: return "IRQ 7";
    case 44: return "mouse";
    case 46: return "ATA 1";
    case 47: return "IRQ 15";
    default: return nullptr;
    }
}

void format_welcome(lib::FormatSink& sink, const Snapshot& snap)
{
    char a[12], b[12];
    lib::format_to(sink, "  Heartwood   awake ");
    write_duration(sink, snap.uptime_ns);
    lib::format_to(sink, " ({} ticks at {} Hz)\n", snap.ticks, snap.hz);
    if (!snap.loom_ready) {
        lib::format_to(sink, "  Loom        not yet woven (the scheduler has not started)\n");
    } else {
        using sched::ThreadState;
        lib::format_to(sink, "  Loom        {} threads: {} Weaving (running), {} Poised (ready),\n", snap.threads_total,
                       in_state(snap, ThreadState::Running), in_state(snap, ThreadState::Ready));
        lib::format_to(sink, "              {} Resting (sleeping), {} Tangled (blocked),\n",
                       in_state(snap, ThreadState::Sleeping), in_state(snap, ThreadState::Blocked));
        lib::format_to(sink, "              {} Fading (exited, not yet reaped)\n", in_state(snap, ThreadState::Exited));
        lib::format_to(sink, "  Priorities  critical {}, high {}, normal {}, low {}, idle {}\n",
                       snap.threads_by_priority[0], snap.threads_by_priority[1], snap.threads_by_priority[2],
                       snap.threads_by_priority[3], snap.threads_by_priority[4]);
        lib::format_to(sink, "  Switches    {} voluntary, {} involuntary, {} preemptions\n", snap.voluntary_switches,
                       snap.involuntary_switches, snap.preemptions);
        lib::format_to(sink, "  CPU         load {}, idle {} since the Loom began\n",
                       ppm_to_percent(a, sizeof(a), snap.load_ppm), ppm_to_percent(b, sizeof(b), snap.idle_ppm));
        if (snap.harmony_threads == 0)
            lib::format_to(sink, "  Harmony     100.0% (no two ready threads share a priority)\n");
        else
            lib::format_to(sink, "  Harmony     {} (Jain's fairness of CPU time, {} ready threads)\n",
                           ppm_to_percent(a, sizeof(a), snap.harmony_ppm), snap.harmony_threads);
    }
    const MemorySummary& m = snap.memory;
    char pct[12];
    lib::format_to(sink, "  Mana Pool   frames: ");
    write_bytes(sink, m.frames_used_bytes);
    lib::format_to(sink, " used of ");
    write_bytes(sink, m.frames_total_bytes);
    lib::format_to(sink, " ({}), peak ",
                   ppm_to_percent(pct, sizeof(pct), ratio_ppm(m.frames_used_bytes, m.frames_total_bytes)));
    write_bytes(sink, m.frames_peak_used_bytes);
    lib::format_to(sink, "\n              heap:   ");
    write_bytes(sink, m.heap_used_bytes);
    lib::format_to(sink, " handed out of ");
    write_bytes(sink, m.heap_total_bytes);
    lib::format_to(sink, " held, peak ");
    write_bytes(sink, m.heap_peak_used_bytes);
    lib::format_to(sink, "\n");
    lib::format_to(sink, "  Attunement  timer {} interrupts, keyboard {}, COM1 {}\n", snap.interrupts[kTimerVector],
                   snap.interrupts[33], snap.interrupts[36]);
}

void format_vectors(lib::FormatSink& sink, const Snapshot& snap)
{
    lib::format_to(sink, "  Interrupts by vector since boot ({} in all, non-zero shown):\n", snap.interrupts_total);
    unsigned on_line = 0;
    for (unsigned v = 0; v < kVectorCount; ++v) {
        if (snap.interrupts[v] == 0)
            continue;
        char cell[40];
        const char* label = vector_label(v);
        if (label != nullptr)
            lib::format(cell, sizeof(cell), "{} {}: {}", v, label, snap.interrupts[v]);
        else
            lib::format(cell, sizeof(cell), "{}: {}", v, snap.interrupts[v]);
        lib::format_to(sink, "{}{:<24}", on_line == 0 ? "    " : " ", static_cast<const char*>(cell));
        if (++on_line == 3) {
            lib::format_to(sink, "\n");
            on_line = 0;
        }
    }
    if (on_line != 0)
        lib::format_to(sink, "\n");
    if (snap.interrupts_other != 0)
        lib::format_to(sink, "    vectors 48-255: {}\n", snap.interrupts_other);
}

} // namespace

void format_thread_table(lib::FormatSink& sink, const Snapshot& snap, size_t max_rows)
{
    // 5 + 1 + 20 + 1 + 19 + 1 + 9 + 1 + 10 + 1 + 9 = 77 columns
    lib::format_to(sink, "{:>5} {:<20} {:<19} {:<9} {:>10} {:>9}\n", "ID", "NAME", "STATE", "PRIORITY", "CPU ms",
                   "SWITCHES");
    const size_t shown = snap.row_count < max_rows ? snap.row_count : max_rows;
    for (size_t i = 0; i < shown; ++i) {
        const ThreadRow& r = snap.rows[i];
        char state[24];
        lib::format(state, sizeof(state), "{} ({})", sched::state_name(r.state), sched::state_meaning(r.state));
        lib::format_to(sink, "{:>5} {:<20.20} {:<19} {:<9} {:>10} {:>9}\n", r.id, static_cast<const char*>(r.name),
                       static_cast<const char*>(state),
                       r.idle_thread ? "-" : (r.boosted ? "boosted" : sched::priority_name(r.priority)),
                       r.cpu_ns / 1'000'000, r.switches());
    }
    const size_t more = snap.row_count - shown + snap.rows_omitted;
    if (more != 0)
        lib::format_to(sink, "      ...and {} more\n", more);
}

void format_snapshot(lib::FormatSink& sink, const Snapshot& snap, Layout layout)
{
    format_welcome(sink, snap);
    if (layout == Layout::Welcome)
        return;
    if (snap.loom_ready) {
        lib::format_to(sink, "\n");
        format_thread_table(sink, snap);
        lib::format_to(sink, "  Threads     {} spawned, {} reaped since boot; {} boosted now, {} boosts\n",
                       snap.threads_spawned, snap.threads_reaped, snap.threads_boosted, snap.boosts);
        lib::format_to(sink, "  Switches    {} in all: {} quantum expiries, {} wake-ups\n", snap.context_switches,
                       snap.quantum_expiries, snap.wakeups);
        // The request counts (irq_exit_requests, deferred_requests) are in `preempt status`: one
        // more line here would push the welcome past 80x25.
        lib::format_to(sink, "              {} at interrupt exit, {} deferred to preempt_enable\n",
                       snap.irq_exit_switches, snap.deferred_switches);
    }
    format_vectors(sink, snap);
    const MemorySummary& m = snap.memory;
    lib::format_to(sink, "  Mana Pool   heap: {} allocations, {} frees, {} failed\n", m.heap_allocations, m.heap_frees,
                   m.heap_failed_allocations);
    lib::format_to(sink, "              kernel stacks: {} in use, peak {} (16 KiB + a guard page each)\n",
                   m.kernel_stacks_in_use, m.kernel_stacks_peak);
    lib::format_to(sink, "  (snapshot #{}: interrupts off for {} cycles)\n", snap.sequence, snap.interrupts_off_cycles);
}

namespace {
struct ConsoleSink final : lib::FormatSink {
    void write(const char* s, size_t n) override { lib::log::write_raw(s, n); }
};
} // namespace

void print_snapshot(const Snapshot& snap, Layout layout)
{
    ConsoleSink sink;
    format_snapshot(sink, snap, layout);
}

} // namespace kernel::stats
