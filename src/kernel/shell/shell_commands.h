#pragma once
// Eldarin's kernel command set, split over files by subsystem. The table lives in shell_kernel.cpp;
// handlers that drive the Loom of Fate's trace and preemption switch live in shell_kernel_sched.cpp.
#include "kernel/shell/command_table.h"

namespace kernel::shell {

// Every command the kernel's shell knows, in `help` order.
CommandTable eldarin_command_table();

// shell_kernel_sched.cpp
CommandStatus cmd_preempt(const Args& args, lib::FormatSink& out);
CommandStatus cmd_trace(const Args& args, lib::FormatSink& out);

} // namespace kernel::shell
