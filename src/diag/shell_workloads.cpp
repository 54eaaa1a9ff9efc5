// The shell's `spawn` and the stopping half of `kill`: the workloads are diagnostics, so these live
// in the test image with them and reach the shell through kernel/diagnostics.h.
#include "diag/shell_workloads.h"

#include "diag/workloads.h"
#include "kernel/shell/shell_commands.h"
#include "sched/scheduler.h"

namespace kernel::diag {

using shell::Args;
using shell::CommandStatus;

namespace {

// Workloads stop cooperatively (diag/workloads.h), so kill waits a bounded time and says which
// way it went.
constexpr uint64_t kKillWaitMs = 2000;

} // namespace

// `spawn <workload> [count] [priority] [seconds]`: detached threads that exit after `seconds`.
CommandStatus spawn_command(const Args& args, lib::FormatSink& out)
{
    if (args.count() < 2 || args.count() > 5)
        return CommandStatus::Usage;
    workloads::Kind kind = workloads::Kind::Hog;
    if (!workloads::parse_kind(args[1], kind)) {
        lib::format_to(out, "spawn: unknown workload '{}' (hog, churn, sleeper, contend)\n", args[1]);
        return CommandStatus::Usage;
    }
    uint64_t count = 1;
    sched::Priority priority = sched::Priority::Normal;
    uint64_t seconds = 10;
    if (args.count() > 2 && (!shell::parse_number(args[2], workloads::kMaxSpawnCount, count) || count == 0))
        return CommandStatus::Usage;
    if (args.count() > 3 && !shell::parse_priority(args[3], priority))
        return CommandStatus::Usage;
    // Critical outranks the shell: a Critical hog would leave nobody able to type `kill`.
    if (priority == sched::Priority::Critical) {
        lib::format_to(out,
                       "spawn: critical is kept for the Heartwood's own threads; a critical workload would "
                       "silence Eldarin (use high or below)\n");
        return CommandStatus::Failed;
    }
    if (args.count() > 4 && (!shell::parse_number(args[4], 3600, seconds) || seconds == 0))
        return CommandStatus::Usage;
    const workloads::SpawnResult result =
        workloads::spawn(kind, static_cast<unsigned>(count), priority, seconds * 1000);
    lib::format_to(out, "spawned {} '{}' thread(s) at {} priority for {} s", result.spawned, workloads::kind_name(kind),
                   sched::priority_name(priority), seconds);
    for (unsigned i = 0; i < result.spawned; ++i)
        lib::format_to(out, "{}{}", i == 0 ? ": ids " : " ", result.ids[i]);
    out.write("\n", 1);
    if (result.failed) {
        lib::format_to(out, "spawn: stopped early: {}\n",
                       result.no_slot ? "every workload slot is taken (kill some, or wait for them to end)"
                                      : sched::to_string(result.error));
        return CommandStatus::Failed;
    }
    return CommandStatus::Ok;
}

CommandStatus kill_workload(uint64_t id, const char* name, lib::FormatSink& out)
{
    const workloads::StopResult result = workloads::stop(id, kKillWaitMs);
    switch (result.outcome) {
    case workloads::StopOutcome::NotAWorkload:
        // A workload that ended on its own since the lookup above is no longer in the table either.
        if (!shell::live_thread_exists(id)) {
            lib::format_to(out, "kill: thread {} '{}' has already ended on its own\n", id, name);
            return CommandStatus::Ok;
        }
        lib::format_to(out, "kill: thread {} '{}' is not a workload; only threads started by spawn can be stopped\n",
                       id, name);
        return CommandStatus::Failed;
    case workloads::StopOutcome::AlreadyEnding:
        lib::format_to(out, "kill: thread {} '{}' was already ending on its own\n", id, name);
        return CommandStatus::Ok;
    case workloads::StopOutcome::StillRunning:
        lib::format_to(out,
                       "kill: thread {} '{}' has been asked to stop but is still running after {} ms; it ends "
                       "when it next gets the CPU\n",
                       id, static_cast<const char*>(result.name), result.waited_ms);
        return CommandStatus::Failed;
    case workloads::StopOutcome::Stopped: break;
    }
    lib::format_to(out, "kill: thread {} '{}' has stopped (within {} ms); its stack is back in the Mana Pool\n", id,
                   static_cast<const char*>(result.name), result.waited_ms);
    return CommandStatus::Ok;
}

} // namespace kernel::diag
