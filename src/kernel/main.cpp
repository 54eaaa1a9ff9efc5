// The Heartwood's boot flow, from the first C++ instruction to the idle loop.
// See docs/architecture.md for the whole path from GRUB to here.
#include "arch/cpu.h"
#include "arch/timer.h"
#include "arch/x86_64/arch_init.h"
#include "arch/x86_64/memory_layout.h"
#include "arch/x86_64/qemu.h"
#include "drivers/console.h"
#include "drivers/input.h"
#include "kernel/boot_info.h"
#include "kernel/cmdline.h"
#include "kernel/diagnostics.h"
#include "kernel/multiboot2.h"
#include "kernel/panic.h"
#include "kernel/runtime.h"
#include "kernel/shell/shell_kernel.h"
#include "kernel/stats.h"
#include "kernel/test_mode.h"
#include "lib/log.h"
#include "mm/frames.h"
#include "mm/kmalloc.h"
#include "sched/scheduler.h"
#include "time/time.h"

namespace kernel {

namespace {

constexpr uint32_t kMultiboot2Magic = 0x36d76289;
// GRUB's info is a few KiB; anything past this is a corrupt total_size, reported by the parser.
constexpr uint64_t kMaxBootInfoBytes = 1u << 20;

bool g_test_mode = false;
BootInfo g_boot_info;
KernelOptions g_options;

void print_banner()
{
    lib::log::print("\x1b[1;32m"
                    "    _       _   _          _  ___  ____  \n"
                    "   / \\  ___| |_| |__   ___| |/ _ \\/ ___| \n"
                    "  / _ \\/ _ \\ __| '_ \\ / _ \\ | | | \\___ \\ \n"
                    " / ___ \\  __/ |_| | | |  __/ | |_| |___) |\n"
                    "/_/   \\_\\___|\\__|_| |_|\\___|_|\\___/|____/ \x1b[0m\n"
                    "\n  AethelOS - the Heartwood stirs; this is what it holds:\n");
}

uint64_t clock_for_log() { return time::uptime_ns(); }

// Reads the Multiboot2 blob through the physmap and parses it; any flaw is fatal,
// but only once the consoles exist so the reason can be read.
void load_boot_info(uint32_t magic, uint64_t info_phys)
{
    if (magic != kMultiboot2Magic)
        panic("not started by a Multiboot2 loader (magic {:#x}, expected {:#x})", magic, kMultiboot2Magic);
    if (info_phys == 0 || info_phys + 8 > arch::kPhysMapSize)
        panic("Multiboot2 info pointer {:#x} is outside the mapped first 4 GiB", info_phys);
    auto* header = arch::phys_to_virt(PhysicalAddress(info_phys)).as_ptr<const uint32_t>();
    uint64_t length = header[0];
    if (length > kMaxBootInfoBytes)
        length = kMaxBootInfoBytes;
    if (info_phys + length > arch::kPhysMapSize)
        length = arch::kPhysMapSize - info_phys;
    // Parsed in place: BootInfo is ~5 KiB, too much to return by value on the boot stack.
    const lib::Span<const uint8_t> blob(reinterpret_cast<const uint8_t*>(header), static_cast<size_t>(length));
    if (auto status = parse_multiboot2_into(g_boot_info, blob, info_phys); !status)
        panic("malformed Multiboot2 boot information: {}", status.error().message);
}

void apply_command_line()
{
    const CmdlineResult result = parse_cmdline(lib::StringView(g_boot_info.cmdline));
    g_options = result.options;
    lib::log::set_level(g_options.log_level);
    for (size_t i = 0; i < result.diagnostic_count; ++i)
        lib::log::warn("{}", result.diagnostics[i]);
    // A deliberate fault is a test too: its panic must end QEMU with the panic code.
    g_test_mode = g_options.ktest || g_options.fault[0] != '\0';
}

// A test option on the image without diagnostics: say so and fail the run, rather than boot to a
// shell that a test harness would wait on in vain.
[[noreturn]] void exit_without_diagnostics(const char* option)
{
    lib::log::error("{}: {}", option, diag::kAbsent);
    arch::qemu_exit(kExitFail);
}

// `fault=<name>`: the fault must end in a panic; getting back here means it went unnoticed.
[[noreturn]] void provoke_fault_and_exit(const char* name)
{
    const diag::Hooks* hooks = diag::hooks();
    if (hooks == nullptr)
        exit_without_diagnostics("fault");
    hooks->provoke_fault(name);
    lib::log::error("fault: '{}' was NOT detected; the Heartwood carried on", name);
    arch::qemu_exit(kExitFail);
}

[[noreturn]] void run_stress_and_exit(uint32_t seconds)
{
    const diag::Hooks* hooks = diag::hooks();
    if (hooks == nullptr)
        exit_without_diagnostics("stress");
    hooks->run_stress_and_exit(seconds);
    arch::qemu_exit(kExitFail); // not reached: the stress run ends QEMU itself
}

void print_welcome()
{
    lib::log::info("booted by {} with command line '{}'", g_boot_info.bootloader_name, g_boot_info.cmdline);
    lib::log::info("Mana Pool: {} MiB usable in {} memory regions", g_boot_info.usable_bytes() >> 20,
                   g_boot_info.memory_region_count);
    lib::log::info("Attunement: {} timer at {} Hz", arch::system_timer().name(), time::hz());
    // Live figures, copied with interrupts briefly off (never blocking on the timer): see stats.h.
    static stats::Snapshot snapshot; // ~7 KiB, kept off the boot stack
    stats::take_snapshot(snapshot);
    // The banner comes after the boot log, so that on an 80x25 screen the welcome (banner,
    // snapshot, prompt: 25 lines) is what stays in view.
    print_banner();
    stats::print_snapshot(snapshot, stats::Layout::Welcome);
}

// What the Mana Pool holds for others: heap bytes handed out, and frames used outside the heap.
struct MemoryFootprint {
    uint64_t heap_bytes_used;
    uint64_t frames_bytes_outside_heap;
};

MemoryFootprint memory_footprint()
{
    mm::heap_shrink(); // empty slabs and chunks are cache, not leaks
    mm::HeapStats heap;
    mm::heap_stats(heap);
    const mm::FrameStats frames = mm::frames_stats();
    return {heap.bytes_used, frames.bytes_used - heap.bytes_total};
}

[[noreturn]] void run_ktests_and_exit()
{
    const diag::Hooks* hooks = diag::hooks();
    if (hooks == nullptr)
        exit_without_diagnostics("ktest");
    const MemoryFootprint before = memory_footprint();
    const diag::KtestSummary summary = hooks->run_ktests(g_options.ktest_filter);
    const MemoryFootprint after = memory_footprint();
    // The whole run is one more test: every byte the cases took must have come back.
    const bool leak_free = before.heap_bytes_used == after.heap_bytes_used &&
        before.frames_bytes_outside_heap == after.frames_bytes_outside_heap;
    lib::log::print("ktest: leak check {}: heap bytes in use {} -> {}, frame bytes outside the heap {} -> {}\n",
                    leak_free ? "ok" : "FAILED", before.heap_bytes_used, after.heap_bytes_used,
                    before.frames_bytes_outside_heap, after.frames_bytes_outside_heap);
    const bool passed = summary.failed == 0 && summary.passed > 0 && leak_free;
    arch::qemu_exit(passed ? kExitPass : kExitFail);
}

} // namespace

bool test_mode() { return g_test_mode; }
void set_test_mode(bool on) { g_test_mode = on; }
const BootInfo& boot_info() { return g_boot_info; }
const KernelOptions& options() { return g_options; }

} // namespace kernel

extern "C" [[noreturn]] void kernel_main(uint32_t multiboot_magic, uint64_t multiboot_info_phys)
{
    using namespace kernel;
    run_global_constructors();

    // Serial first: it is always there under QEMU and is where a parse failure would be read.
    drivers::init_serial_console();
    load_boot_info(multiboot_magic, multiboot_info_phys);
    drivers::init_screen_consoles(g_boot_info.has_framebuffer ? &g_boot_info.framebuffer : nullptr);
    apply_command_line();
    mm::init_frames(g_boot_info);
    mm::init_heap();

    arch::init_cpu();
    time::init(arch::system_timer(), g_options.hz);
    lib::log::set_clock(&clock_for_log);
    sched::init(); // from here on this boot flow is the thread "heartwood"; ktests run in it
    arch::interrupts_enable();
    drivers::init_input();
    print_welcome();

    if (g_options.fault[0] != '\0')
        provoke_fault_and_exit(g_options.fault);
    if (g_options.stress_seconds > 0)
        run_stress_and_exit(g_options.stress_seconds);
    if (g_options.ktest)
        run_ktests_and_exit();
    // The Eldarin shell takes the serial line (it never ends, so it is not joined). The Heartwood
    // parks for good, waking only to run `ktest` for the shell on this large boot stack.
    (void)shell::spawn_shell_thread();
    shell::serve_heartwood_forever();
}
