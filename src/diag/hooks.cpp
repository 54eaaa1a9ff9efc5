// The test image's side of kernel/diagnostics.h: with this file linked in, diag::hooks() is the
// table below; the image without diagnostics leaves the weak reference unresolved (null).
#include "diag/fault_inject.h"
#include "diag/ktest.h"
#include "diag/shell_workloads.h"
#include "diag/stress.h"
#include "kernel/diagnostics.h"

namespace kernel::diag {

namespace {

KtestSummary run_ktests(const char* filter) { return ktest::run_all(filter); }
void run_stress_and_exit(uint32_t seconds) { stress::run_and_exit(seconds); }
void provoke_fault(const char* name) { fault::provoke(name); }

} // namespace

extern const Hooks g_hooks;
constinit const Hooks g_hooks{
    .run_ktests = run_ktests,
    .run_stress_and_exit = run_stress_and_exit,
    .provoke_fault = provoke_fault,
    .spawn_command = spawn_command,
    .kill_workload = kill_workload,
};

} // namespace kernel::diag
