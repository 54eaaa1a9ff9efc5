#pragma once
// The kernel command line: whitespace-separated `name` or `name=value` words.
//
//   log=<error|warn|info|debug|trace>   log level (default info)
//   hz=<19..10000>                      timer frequency (default 1000; the PIT cannot go below ~18.2 Hz)
//   ktest / ktest=<glob>                run the in-kernel tests (optionally only matching ones)
//   stress=<1..86400>                   stress run length in seconds (default 0: off)
//   fault=<name>                        provoke a deliberate fault after boot, in test mode
//                                       (names in kernel/fault_names.h)
//
// A bad word never stops the boot: it is reported in the result's diagnostics
// and the option keeps its default (or the last good value given for it).
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "lib/string.h"

namespace kernel {

inline constexpr uint32_t kMinTimerHz = 19;
inline constexpr uint32_t kMaxTimerHz = 10000;
inline constexpr uint32_t kMaxStressSeconds = 86400;

struct KernelOptions {
    lib::log::Level log_level = lib::log::Level::Info;
    uint32_t hz = 1000;
    bool ktest = false;
    char ktest_filter[64] = "";  // empty: every test
    uint32_t stress_seconds = 0; // 0: no stress run
    char fault[32] = "";         // empty: none (kernel::fault::kNames)
};

struct CmdlineResult {
    static constexpr size_t kMaxDiagnostics = 8;
    static constexpr size_t kDiagnosticCapacity = 128;

    KernelOptions options;
    // One line each, e.g. "cmdline: unknown option 'foo=1' (ignored)". When more
    // problems occur than fit, the last line says how many were not listed.
    char diagnostics[kMaxDiagnostics][kDiagnosticCapacity] = {};
    size_t diagnostic_count = 0;
    size_t dropped_diagnostics = 0;
};

CmdlineResult parse_cmdline(lib::StringView cmdline);

// The options the kernel booted with (defined in main.cpp).
const KernelOptions& options();

} // namespace kernel
