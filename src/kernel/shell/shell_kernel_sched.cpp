// Eldarin commands that steer the Loom of Fate's machinery: the preemption switch and the trace.
#include "kernel/shell/shell_commands.h"

namespace kernel::shell {

CommandStatus cmd_preempt(const Args&, lib::FormatSink& out)
{
    lib::format_to(out, "preempt: not built yet\n");
    return CommandStatus::Failed;
}

CommandStatus cmd_trace(const Args&, lib::FormatSink& out)
{
    lib::format_to(out, "trace: not built yet\n");
    return CommandStatus::Failed;
}

} // namespace kernel::shell
