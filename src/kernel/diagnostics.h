#pragma once
// The seam between the Heartwood and its diagnostics. The in-kernel tests (the runner in
// src/diag, the cases in each subsystem's ktests/ folder), the stress load, the shell's
// workloads and fault injection are linked only into the test image (aethelos-test.elf). The
// image `make run` boots carries none of them: there hooks() is null, and each way in (the
// `ktest`, `stress=` and `fault=` options, the shell's `ktest`, `spawn` and `kill`) says so.
//
// The kernel reaches the diagnostics only through this table, so no core file names a
// diagnostic symbol and the layer check (scripts/check-layers.py) keeps it that way.
#include <stdint.h>

#include "kernel/shell/command_table.h"
#include "lib/format.h"

namespace kernel::diag {

struct KtestSummary {
    unsigned passed = 0;
    unsigned failed = 0;
    unsigned skipped = 0;  // selected but could not run here (KSKIP)
    unsigned filtered = 0; // not selected by the filter
};

struct Hooks {
    // Runs the ktests matching `filter` (null or empty: all) on the calling thread.
    KtestSummary (*run_ktests)(const char* filter);
    // The stress load for `seconds`, then QEMU's exit: never returns.
    void (*run_stress_and_exit)(uint32_t seconds);
    // Provokes the named fault (kernel/fault_names.h); returns only if it went undetected.
    void (*provoke_fault)(const char* name);
    // The shell's `spawn` command, whole.
    shell::CommandStatus (*spawn_command)(const shell::Args& args, lib::FormatSink& out);
    // `kill`'s last step, once the shell has ruled out the threads that are not its to stop.
    shell::CommandStatus (*kill_workload)(uint64_t id, const char* name, lib::FormatSink& out);
};

// The test image's hooks, or nullptr in the image without diagnostics.
const Hooks* hooks();

// What the image without diagnostics says instead (one line, no newline).
inline constexpr const char* kAbsent =
    "this image carries no diagnostics (ktests, stress, workloads, faults); they are in aethelos-test.elf "
    "(aethelos-test-shell.iso boots it to Eldarin, aethelos-test.iso runs every ktest)";

} // namespace kernel::diag
