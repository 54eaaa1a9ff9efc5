// Eldarin in the kernel: the shell thread and the commands it runs against the Heartwood's APIs.
#include "kernel/shell/shell_kernel.h"

#include "arch/cpu.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/io.h"
#include "drivers/console.h"
#include "drivers/input.h"
#include "kernel/acpi.h"
#include "kernel/diagnostics.h"
#include "kernel/panic.h"
#include "kernel/shell/command_table.h"
#include "kernel/shell/eldarin.h"
#include "kernel/shell/shell_commands.h"
#include "kernel/stats.h"
#include "lib/log.h"
#include "mm/frames.h"
#include "mm/kmalloc.h"
#include "sched/scheduler.h"
#include "sync/preempt.h"
#include "time/time.h"

#include <atomic>

namespace kernel::shell {

bool parse_number(lib::StringView text, uint64_t max, uint64_t& out)
{
    auto value = lib::parse_u64(text);
    if (!value || *value > max)
        return false;
    out = *value;
    return true;
}

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_ignore_case(lib::StringView a, const char* b)
{
    const lib::StringView bv(b);
    if (a.size() != bv.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(bv[i]))
            return false;
    return true;
}

} // namespace

// "high", "High", or its number 0..4 (0 = Critical).
bool parse_priority(lib::StringView text, sched::Priority& out)
{
    for (unsigned i = 0; i < sched::kPriorityCount; ++i) {
        const auto priority = static_cast<sched::Priority>(i);
        if (equals_ignore_case(text, sched::priority_name(priority))) {
            out = priority;
            return true;
        }
    }
    uint64_t number = 0;
    if (!parse_number(text, sched::kPriorityCount - 1, number))
        return false;
    out = static_cast<sched::Priority>(number);
    return true;
}

namespace {

// Large results live in static storage: the shell thread's stack is 16 KiB and only the shell
// thread uses these.
stats::Snapshot g_snapshot;
mm::HeapStats g_heap_stats;

CommandStatus cmd_help(const Args& args, lib::FormatSink& out);

CommandStatus cmd_echo(const Args& args, lib::FormatSink& out)
{
    for (size_t i = 1; i < args.count(); ++i) {
        if (i > 1)
            out.write(" ", 1);
        out.write(args[i].data(), args[i].size());
    }
    out.write("\n", 1);
    return CommandStatus::Ok;
}

CommandStatus cmd_clear(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    out.write(kClearScreen, lib::StringView(kClearScreen).size());
    return CommandStatus::Ok;
}

CommandStatus cmd_uptime(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    const uint64_t ns = time::uptime_ns();
    const uint64_t total_ms = ns / 1'000'000;
    const uint64_t seconds = total_ms / 1000;
    lib::format_to(out, "up {}:{:02}:{:02}.{:03} ({} ticks at {} Hz)\n", seconds / 3600, (seconds / 60) % 60,
                   seconds % 60, total_ms % 1000, time::ticks(), time::hz());
    return CommandStatus::Ok;
}

CommandStatus cmd_stats(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    stats::take_snapshot(g_snapshot);
    stats::format_snapshot(out, g_snapshot, stats::Layout::Full);
    return CommandStatus::Ok;
}

CommandStatus cmd_threads(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    stats::take_snapshot(g_snapshot);
    stats::format_thread_table(out, g_snapshot);
    return CommandStatus::Ok;
}

void format_order_row(lib::FormatSink& out, const char* label, const int32_t* values, unsigned count)
{
    lib::format_to(out, "  {:<8}", label);
    for (unsigned i = 0; i < count; ++i)
        lib::format_to(out, "{:>6}", values[i]);
    out.write("\n", 1);
}

CommandStatus cmd_mem(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    const mm::FrameStats frames = mm::frames_stats();
    lib::format_to(out, "Mana Pool frames (KiB): {} managed, {} used (peak {}), {} free\n", frames.bytes_total >> 10,
                   frames.bytes_used >> 10, frames.peak_bytes_used >> 10, frames.bytes_free >> 10);
    lib::format_to(out, "  zones: {}, metadata: {} KiB; {} allocations, {} frees, {} failed\n", frames.zone_count,
                   frames.metadata_bytes >> 10, frames.allocations, frames.frees, frames.failed_allocations);
    lib::format_to(out,
                   "frames buddyinfo (order k = 4 KiB << k) and fragmentation index (thousandths;\n"
                   "-1000: a block of that order is free, near 1000: free memory too fragmented):\n");
    lib::format_to(out, "  {:<8}", "order");
    for (unsigned i = 0; i < mm::kFrameOrders; ++i)
        lib::format_to(out, "{:>6}", i);
    out.write("\n", 1);
    lib::format_to(out, "  {:<8}", "free");
    for (unsigned i = 0; i < mm::kFrameOrders; ++i)
        lib::format_to(out, "{:>6}", frames.free_blocks[i]);
    out.write("\n", 1);
    format_order_row(out, "frag", frames.fragmentation_index, mm::kFrameOrders);

    mm::heap_stats(g_heap_stats);
    const mm::HeapStats& heap = g_heap_stats;
    lib::format_to(out, "Mana Pool heap: {} KiB held (peak {} pages), {} KiB used (peak {} KiB)\n",
                   heap.bytes_total >> 10, heap.peak_pages_held, heap.bytes_used >> 10, heap.peak_bytes_used >> 10);
    lib::format_to(out, "  {} allocations, {} frees, {} failed; watermarks: low {} pages, min {} pages\n",
                   heap.allocations, heap.frees, heap.failed_allocations, heap.low_watermark_pages,
                   heap.min_watermark_pages);
    lib::format_to(out, "  medium: {} chunks, {} KiB used of {} KiB; large: {} blocks, {} KiB\n", heap.chunks,
                   heap.medium_bytes_used >> 10, heap.medium_bytes_total >> 10, heap.large_blocks,
                   heap.large_bytes >> 10);
    // slabinfo: only the caches that hold slabs or have ever been used, to stay on one screen.
    lib::format_to(out, "slabinfo (caches in use; {} in all):\n", heap.cache_count);
    lib::format_to(out, "  {:<20}{:>9}{:>9}{:>6}{:>6}{:>7}{:>10}{:>10}\n", "cache", "active", "total", "size", "pgs",
                   "slabs", "allocs", "frees");
    unsigned quiet = 0;
    for (unsigned i = 0; i < heap.cache_count && i < mm::kHeapMaxCacheRows; ++i) {
        const mm::HeapCacheRow& row = heap.caches[i];
        if (row.slabs == 0 && row.allocations == 0) {
            ++quiet;
            continue;
        }
        lib::format_to(out, "  {:<20}{:>9}{:>9}{:>6}{:>6}{:>7}{:>10}{:>10}\n", static_cast<const char*>(row.name),
                       row.active_objects, row.total_objects, row.object_size, row.pages_per_slab, row.slabs,
                       row.allocations, row.frees);
    }
    if (quiet > 0)
        lib::format_to(out, "  ({} unused caches not shown)\n", quiet);
    return CommandStatus::Ok;
}

CommandStatus cmd_harmony(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    stats::take_snapshot(g_snapshot);
    char percent[8];
    lib::format_to(out, "Harmony: {} over {} threads\n",
                   stats::ppm_to_percent(percent, sizeof(percent), g_snapshot.harmony_ppm), g_snapshot.harmony_threads);
    for (unsigned i = 0; i < sched::kPriorityCount; ++i) {
        if (g_snapshot.harmony_members[i] < 2)
            continue;
        lib::format_to(out, "  {:<8} {:>6} ({} threads)\n", sched::priority_name(static_cast<sched::Priority>(i)),
                       stats::ppm_to_percent(percent, sizeof(percent), g_snapshot.harmony_by_priority_ppm[i]),
                       g_snapshot.harmony_members[i]);
    }
    lib::format_to(out,
                   "Harmony is Jain's fairness index, (sum x)^2 / (n * sum x^2), of the CPU time of\n"
                   "the threads that are ready or running, compared only among threads of the same\n"
                   "priority (a High thread is meant to get more than a Normal one). 100% means\n"
                   "every thread got an equal share; 1/n means one thread got everything. The\n"
                   "figure is the member-weighted mean over priorities with at least two such\n"
                   "threads (100% when none has two), using lifetime CPU time, so it is most\n"
                   "telling for threads that have competed for about the same time.\n");
    return CommandStatus::Ok;
}

struct FindThread {
    uint64_t id;
    sched::Thread* found;
};

void find_thread_visitor(const sched::Thread& thread, void* context)
{
    auto* find = static_cast<FindThread*>(context);
    if (thread.id() == find->id)
        find->found = const_cast<sched::Thread*>(&thread);
}

CommandStatus cmd_nice(const Args& args, lib::FormatSink& out)
{
    uint64_t id = 0;
    sched::Priority priority = sched::Priority::Normal;
    if (args.count() != 3 || !parse_number(args[1], UINT64_MAX, id) || !parse_priority(args[2], priority))
        return CommandStatus::Usage;
    if (priority == sched::Priority::Critical) {
        lib::format_to(out, "nice: critical is kept for the Heartwood's own threads; it would outrank Eldarin\n");
        return CommandStatus::Failed;
    }
    // With preemption off no other thread runs, so none can exit or be reaped (the reaper is the
    // idle thread) between finding the thread and changing it.
    sync::PreemptGuard no_preemption;
    FindThread find{id, nullptr};
    sched::LoomSample sample;
    (void)sched::sample(sample, &find_thread_visitor, &find);
    if (find.found == nullptr || find.found->state() == sched::ThreadState::Exited) {
        lib::format_to(out, "nice: no live thread with id {}\n", id);
        return CommandStatus::Failed;
    }
    if (find.found->is_idle()) {
        lib::format_to(out, "nice: the idle thread keeps its place below every priority\n");
        return CommandStatus::Failed;
    }
    const sched::Priority old = find.found->priority();
    sched::set_priority(find.found, priority);
    lib::format_to(out, "thread {} '{}': {} -> {}\n", id, find.found->name(), sched::priority_name(old),
                   sched::priority_name(priority));
    return CommandStatus::Ok;
}

// `quantum <id|all> <ms>`: ms are converted to ticks at the current rate (at least one tick).
CommandStatus cmd_quantum(const Args& args, lib::FormatSink& out)
{
    uint64_t ms = 0;
    if (args.count() != 3 || !parse_number(args[2], 10'000, ms) || ms == 0)
        return CommandStatus::Usage;
    const bool all = args[1] == lib::StringView("all");
    uint64_t id = 0;
    if (!all && !parse_number(args[1], UINT64_MAX, id))
        return CommandStatus::Usage;
    uint64_t ticks = ms * time::hz() / 1000;
    if (ticks == 0)
        ticks = 1;
    if (all) {
        const size_t changed = sched::set_quantum_all(static_cast<uint32_t>(ticks));
        lib::format_to(out, "quantum: {} threads now get {} ms ({} ticks at {} Hz)\n", changed, ms, ticks, time::hz());
        return CommandStatus::Ok;
    }
    // As in `nice`: with preemption off the thread cannot exit and be reaped meanwhile.
    sync::PreemptGuard no_preemption;
    FindThread find{id, nullptr};
    sched::LoomSample sample;
    (void)sched::sample(sample, &find_thread_visitor, &find);
    if (find.found == nullptr || find.found->state() == sched::ThreadState::Exited) {
        lib::format_to(out, "quantum: no live thread with id {}\n", id);
        return CommandStatus::Failed;
    }
    if (find.found->is_idle()) {
        lib::format_to(out, "quantum: the idle thread has no quantum\n");
        return CommandStatus::Failed;
    }
    const uint32_t old = find.found->quantum_ticks();
    sched::set_quantum(find.found, static_cast<uint32_t>(ticks));
    lib::format_to(out, "thread {} '{}': quantum {} -> {} ticks ({} ms at {} Hz)\n", id, find.found->name(), old, ticks,
                   ms, time::hz());
    return CommandStatus::Ok;
}

// `spawn` starts workloads, which are diagnostics: the test image carries them (diag/).
CommandStatus cmd_spawn(const Args& args, lib::FormatSink& out)
{
    if (const diag::Hooks* hooks = diag::hooks())
        return hooks->spawn_command(args, out);
    lib::format_to(out, "spawn: {}\n", diag::kAbsent);
    return CommandStatus::Failed;
}

CommandStatus cmd_rest(const Args& args, lib::FormatSink&)
{
    uint64_t ms = 0;
    if (args.count() != 2 || !parse_number(args[1], 3'600'000, ms))
        return CommandStatus::Usage;
    sched::sleep_for(ms);
    return CommandStatus::Ok;
}

// `ktest` runs the cases on the Heartwood (boot) thread, not on the shell's: the cases were written
// for it, its large boot stack (some keep multi-KiB statistics on the stack, more than a 16 KiB
// thread stack holds beneath the shell's own frames) and its Normal priority (some yield to Normal
// workers they wait for). The shell parks until the Heartwood reports back.
struct KtestRequest {
    char filter[kLineCapacity + 1] = {};
    bool has_filter = false;
    sched::Thread* requester = nullptr;
    diag::KtestSummary summary;
    std::atomic<bool> pending{false};
    std::atomic<bool> done{false};
};
KtestRequest g_ktest;
std::atomic<sched::Thread*> g_heartwood{nullptr};

CommandStatus cmd_ktest(const Args& args, lib::FormatSink& out)
{
    if (args.count() > 2)
        return CommandStatus::Usage;
    if (diag::hooks() == nullptr) {
        lib::format_to(out, "ktest: {}\n", diag::kAbsent);
        return CommandStatus::Failed;
    }
    sched::Thread* heartwood = g_heartwood.load(std::memory_order_acquire);
    if (heartwood == nullptr) {
        lib::format_to(out, "ktest: the Heartwood thread is not serving test runs\n");
        return CommandStatus::Failed;
    }
    g_ktest.has_filter = args.count() == 2;
    lib::copy_string(g_ktest.filter, sizeof(g_ktest.filter), args[1]);
    g_ktest.requester = sched::current();
    g_ktest.done.store(false, std::memory_order_relaxed);
    g_ktest.pending.store(true, std::memory_order_release);
    sched::unpark(heartwood);
    while (!g_ktest.done.load(std::memory_order_acquire))
        sched::park();
    const diag::KtestSummary summary = g_ktest.summary;
    lib::format_to(out, "ktest: {} passed, {} failed, {} skipped\n", summary.passed, summary.failed, summary.skipped);
    return summary.failed == 0 ? CommandStatus::Ok : CommandStatus::Failed;
}

// Says why it refuses a thread that is not a workload; stopping one is the diagnostics' part
// (diag/shell_workloads.cpp).
struct KillTarget {
    bool found = false;
    bool idle = false;
    sched::Thread* thread = nullptr; // only compared, never dereferenced after the lookup
    char name[sched::kThreadNameBytes] = {};
};

KillTarget find_kill_target(uint64_t id)
{
    KillTarget target;
    // As in `nice`: with preemption off the thread cannot exit and be reaped meanwhile.
    sync::PreemptGuard no_preemption;
    FindThread find{id, nullptr};
    sched::LoomSample sample;
    (void)sched::sample(sample, &find_thread_visitor, &find);
    if (find.found != nullptr && find.found->state() != sched::ThreadState::Exited) {
        target.found = true;
        target.idle = find.found->is_idle();
        target.thread = find.found;
        lib::copy_string(target.name, sizeof(target.name), lib::StringView(find.found->name()));
    }
    return target;
}

CommandStatus cmd_kill(const Args& args, lib::FormatSink& out)
{
    uint64_t id = 0;
    if (args.count() != 2 || !parse_number(args[1], UINT64_MAX, id))
        return CommandStatus::Usage;
    const KillTarget target = find_kill_target(id);
    if (!target.found) {
        lib::format_to(out, "kill: no live thread with id {}\n", id);
        return CommandStatus::Failed;
    }
    const char* name = target.name;
    if (target.idle) {
        lib::format_to(out, "kill: thread {} '{}' is the Loom's idle thread; it cannot be stopped\n", id, name);
        return CommandStatus::Failed;
    }
    if (target.thread == g_heartwood.load(std::memory_order_acquire)) {
        lib::format_to(out, "kill: thread {} '{}' is the Heartwood itself; it cannot be stopped\n", id, name);
        return CommandStatus::Failed;
    }
    if (target.thread == sched::current()) {
        lib::format_to(out, "kill: thread {} '{}' is this shell; Eldarin will not silence itself (try shutdown)\n", id,
                       name);
        return CommandStatus::Failed;
    }
    if (const diag::Hooks* hooks = diag::hooks())
        return hooks->kill_workload(id, name, out);
    lib::format_to(out,
                   "kill: thread {} '{}' is not a workload; only threads started by spawn can be stopped, and {}\n", id,
                   name, diag::kAbsent);
    return CommandStatus::Failed;
}

// `top`: redraws in place (cursor home, erase to the end) so serial terminals and the VGA
// console both show one table; the key that ends it is consumed, with the rest of an escape
// sequence (an arrow key sends three bytes).
CommandStatus cmd_top(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    static constexpr char kHomeAndErase[] = "\x1b[H\x1b[J";
    for (;;) {
        stats::take_snapshot(g_snapshot);
        out.write(kHomeAndErase, sizeof(kHomeAndErase) - 1);
        const uint64_t seconds = time::uptime_ns() / 1'000'000'000;
        lib::format_to(out, "Eldarin top: up {}:{:02}:{:02}, refreshed every second; press any key to return\n",
                       seconds / 3600, (seconds / 60) % 60, seconds % 60);
        stats::format_thread_table(out, g_snapshot);
        const int key = drivers::input_read_byte_for(1000);
        if (key < 0)
            continue;
        if (key == 0x1b)
            while (drivers::input_read_byte_for(30) >= 0) { }
        return CommandStatus::Ok;
    }
}

CommandStatus cmd_shutdown(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    acpi::power_off(out);
}

CommandStatus cmd_panic(const Args& args, lib::FormatSink&)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    panic("deliberate panic from the Eldarin shell");
}

CommandStatus cmd_reboot(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 1)
        return CommandStatus::Usage;
    lib::format_to(out, "The Heartwood rests and wakes anew (rebooting)...\n");
    arch::interrupts_disable();
    // The 8042 keyboard controller's reset line: wait for its input buffer to drain, pulse it.
    for (int i = 0; i < 100'000 && (arch::inb(0x64) & 0x02) != 0; ++i)
        arch::io_wait();
    arch::outb(0x64, 0xFE);
    for (int i = 0; i < 100'000; ++i)
        arch::io_wait();
    // No 8042 (or it ignored us): an empty IDT turns the next exception into a triple fault.
    const arch::DescriptorTablePointer empty_idt{0, 0};
    asm volatile("lidt %0\n\tint3" : : "m"(empty_idt) : "memory");
    arch::halt_forever();
}

const Command kCommands[] = {
    {"help", nullptr, "help [command]", "lists the commands, or shows one command's usage", cmd_help},
    {"echo", nullptr, "echo [text...]", "prints its arguments", cmd_echo},
    {"clear", nullptr, "clear", "clears the screen (Ctrl-L also does)", cmd_clear},
    {"uptime", nullptr, "uptime", "time since boot", cmd_uptime},
    {"stats", nullptr, "stats", "the whole statistics snapshot", cmd_stats},
    {"threads", "ps", "threads", "the Loom of Fate's threads as a table", cmd_threads},
    {"mem", nullptr, "mem", "Mana Pool: frames buddyinfo, heap slabinfo, watermarks", cmd_mem},
    {"harmony", nullptr, "harmony", "Jain's fairness index, explained", cmd_harmony},
    {"nice", nullptr, "nice <id> <high|normal|low|idle>", "changes a thread's priority", cmd_nice},
    {"quantum", nullptr, "quantum <id|all> <ms>", "sets a thread's (or every thread's) time slice", cmd_quantum},
    {"spawn", nullptr, "spawn <hog|churn|sleeper|contend> [count] [priority] [seconds]",
     "starts 1..64 workload threads (default 1, normal, 10 s) and lists their ids; they exit when their time is up",
     cmd_spawn},
    {"kill", nullptr, "kill <id>", "stops a spawned workload thread and waits (up to 2 s) until it has exited",
     cmd_kill},
    {"top", nullptr, "top", "the thread table, refreshed every second until a key is pressed", cmd_top},
    {"preempt", nullptr, "preempt [status|enable|disable]", "shows or switches timer preemption", cmd_preempt},
    {"trace", nullptr, "trace start|stop|dump", "records scheduler events; dump writes Chrome trace JSON", cmd_trace},
    {"rest", nullptr, "rest <ms>", "the shell sleeps for <ms> milliseconds", cmd_rest},
    {"ktest", nullptr, "ktest [filter]", "runs the in-kernel tests (glob filter on suite.name)", cmd_ktest},
    {"panic", nullptr, "panic", "panics the kernel on purpose (for testing)", cmd_panic},
    {"reboot", nullptr, "reboot", "restarts the machine", cmd_reboot},
    {"shutdown", nullptr, "shutdown", "powers the machine off (ACPI S5)", cmd_shutdown},
};
constexpr CommandTable kTable(kCommands, sizeof(kCommands) / sizeof(kCommands[0]));

CommandStatus cmd_help(const Args& args, lib::FormatSink& out) { return print_help(kTable, args, out); }

} // namespace

bool live_thread_exists(uint64_t id) { return find_kill_target(id).found; }

[[noreturn]] void serve_heartwood_forever()
{
    g_heartwood.store(sched::current(), std::memory_order_release);
    for (;;) {
        sched::park();
        if (!g_ktest.pending.exchange(false, std::memory_order_acquire))
            continue;
        const diag::Hooks* hooks = diag::hooks();
        g_ktest.summary =
            hooks != nullptr ? hooks->run_ktests(g_ktest.has_filter ? g_ktest.filter : nullptr) : diag::KtestSummary{};
        g_ktest.done.store(true, std::memory_order_release);
        sched::unpark(g_ktest.requester);
    }
}

CommandTable eldarin_command_table() { return kTable; }

} // namespace kernel::shell
