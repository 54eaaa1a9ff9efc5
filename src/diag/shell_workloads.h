#pragma once
// The shell commands that drive workloads (test image only; kernel/diagnostics.h hands them over).
#include <stdint.h>

#include "kernel/shell/command_table.h"
#include "lib/format.h"

namespace kernel::diag {

shell::CommandStatus spawn_command(const shell::Args& args, lib::FormatSink& out);
shell::CommandStatus kill_workload(uint64_t id, const char* name, lib::FormatSink& out);

} // namespace kernel::diag
