#pragma once
// Eldarin's kernel command set, split over files by subsystem. The table lives in shell_kernel.cpp;
// handlers that drive the Loom of Fate's trace and preemption switch live in shell_kernel_sched.cpp.
#include <stdint.h>

#include "kernel/shell/command_table.h"
#include "lib/string.h"
#include "sched/thread_state.h"

namespace kernel::shell {

// Every command the kernel's shell knows, in `help` order.
CommandTable eldarin_command_table();

// Argument helpers (shell_kernel.cpp): a decimal number up to `max`; a priority by name (any
// case) or number 0..4.
bool parse_number(lib::StringView text, uint64_t max, uint64_t& out);
bool parse_priority(lib::StringView text, sched::Priority& out);
// Whether a thread with this id exists and has not exited (a snapshot).
bool live_thread_exists(uint64_t id);

// shell_kernel_sched.cpp
CommandStatus cmd_preempt(const Args& args, lib::FormatSink& out);
CommandStatus cmd_trace(const Args& args, lib::FormatSink& out);

} // namespace kernel::shell
