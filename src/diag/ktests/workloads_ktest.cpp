// In-kernel tests of the shell's workloads and their cooperative stop (diag/workloads.h): every
// kind stops on request and its thread and stack are freed at once; threads that are not
// workloads are refused; a stop that times out hands the workload back, and it still ends and is
// reaped on its own. They run in the boot thread "heartwood" (Normal priority).
#include "diag/ktest.h"
#include "diag/workloads.h"
#include "sched/scheduler.h"
#include "sched/thread.h"
#include "time/time.h"

namespace {

namespace workloads = kernel::workloads;
using sched::Priority;

uint32_t stacks_in_use() { return arch::kernel_stack_stats().in_use; }

// Waits up to `ms` for cond(), sleeping so that other threads (and the reaper) run.
template <typename Cond>
bool wait_until(uint64_t ms, Cond cond)
{
    for (uint64_t waited = 0; waited < ms; waited += 5) {
        if (cond())
            return true;
        sched::sleep_for(5);
    }
    return cond();
}

KTEST(workloads, every_kind_stops_on_request_and_frees_its_stack)
{
    // Threads that ended earlier (other cases) may still wait for the reaper.
    wait_until(2000, [] { return workloads::live_count() == 0; });
    const unsigned live_before = workloads::live_count();
    const uint32_t stacks_before = stacks_in_use();
    const workloads::Kind kinds[] = {workloads::Kind::Hog, workloads::Kind::Churn, workloads::Kind::Sleeper,
                                     workloads::Kind::Contend};
    for (workloads::Kind kind : kinds) {
        const workloads::SpawnResult spawned = workloads::spawn(kind, 2, Priority::Normal, 60'000);
        KASSERT(!spawned.failed);
        KASSERT(spawned.spawned == 2);
        KEXPECT(spawned.ids[0] != spawned.ids[1]);
        KEXPECT_EQ(workloads::live_count(), live_before + 2);
        sched::sleep_for(20); // let them get going (contend: someone holds the mutex)
        for (unsigned i = 0; i < 2; ++i) {
            const workloads::StopResult r = workloads::stop(spawned.ids[i], 2000);
            if (r.outcome != workloads::StopOutcome::Stopped)
                ktest_ctx.failf(__FILE__, __LINE__, "'{}' #{}: outcome {} after {} ms", workloads::kind_name(kind), i,
                                static_cast<unsigned>(r.outcome), r.waited_ms);
            KEXPECT(r.waited_ms <= 2000 + 600); // + one starvation bound for the join
        }
        // Joined by stop(): no reaper involved, so the figures are back right away.
        KEXPECT_EQ(workloads::live_count(), live_before);
        KEXPECT_EQ(stacks_in_use(), stacks_before);
        // The same id again is no workload any more.
        KEXPECT(workloads::stop(spawned.ids[0], 10).outcome == workloads::StopOutcome::NotAWorkload);
    }
}

void parks_once(void*) { sched::park(); }

KTEST(workloads, other_threads_are_not_workloads)
{
    auto plain = sched::spawn(&parks_once, nullptr, "not-a-workload", Priority::Normal);
    KASSERT(plain);
    KEXPECT(workloads::stop((*plain)->id(), 100).outcome == workloads::StopOutcome::NotAWorkload);
    KEXPECT(workloads::stop(sched::current()->id(), 100).outcome == workloads::StopOutcome::NotAWorkload);
    KEXPECT(workloads::stop(~uint64_t{0}, 100).outcome == workloads::StopOutcome::NotAWorkload);
    sched::unpark(*plain);
    sched::join(*plain);
}

KTEST(workloads, a_stop_that_times_out_still_ends_the_workload)
{
    wait_until(2000, [] { return workloads::live_count() == 0; });
    const unsigned live_before = workloads::live_count();
    const uint32_t stacks_before = stacks_in_use();
    // A Low hog cannot run while this (Normal) thread does, so a zero timeout always expires.
    const workloads::SpawnResult spawned = workloads::spawn(workloads::Kind::Hog, 1, Priority::Low, 60'000);
    KASSERT(spawned.spawned == 1);
    const workloads::StopResult r = workloads::stop(spawned.ids[0], 0);
    KEXPECT(r.outcome == workloads::StopOutcome::StillRunning);
    // Handed back with the request set: it sees it when it next runs (while we sleep), detaches
    // itself and the idle thread reaps it.
    KEXPECT(wait_until(3000, [&] { return workloads::live_count() == live_before; }));
    KEXPECT(wait_until(3000, [&] { return stacks_in_use() == stacks_before; }));
}

} // namespace
