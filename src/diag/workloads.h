#pragma once
// Workloads the Eldarin shell's `spawn` starts: kernel threads that load the Loom of Fate and the
// Mana Pool for a fixed lifetime, then exit on their own (so their memory returns), or earlier
// when `kill` asks them to (stop()).
//   hog      compute-bound, never yields or blocks
//   churn    kmalloc/kfree churn; each block carries a pattern checked before it is freed
//   sleeper  sleeps 1..20 ms at a time, checks it never woke early
//   contend  contends for one shared sync::Mutex, checks mutual exclusion
// Broken invariants are logged as errors (the threads keep going).
//
// ## Stopping, and who frees a workload
// The kernel has no asynchronous thread termination, so stopping is cooperative: every workload
// reads its slot's stop request once per iteration (a hog between two increments, a sleeper
// between two sleeps of at most 20 ms, contend after releasing the mutex, churn after one
// allocation or free; churn frees its blocks before returning).
// Each workload owns a slot in a static table, whose phase decides who frees the thread:
//   Running  --(the workload's own end)-->  Leaving: it detaches itself, the Loom's reaper frees it
//   Running  --(stop() claims it)-------->  Claimed: the workload leaves it Done; stop() joins it,
//                                           which frees its TCB and stack at once
// The two transitions are compare-exchanges, so exactly one side wins and exactly one side frees.
// stop() waits a bounded time; when the workload has not finished by then it hands the slot back
// (Claimed -> Running, stop request still set), so the workload detaches itself when it does.
#include <stddef.h>
#include <stdint.h>

#include "lib/string.h"
#include "sched/scheduler.h"

namespace kernel::workloads {

enum class Kind : uint8_t { Hog, Churn, Sleeper, Contend };
inline constexpr unsigned kKindCount = 4;
inline constexpr unsigned kMaxSpawnCount = 64;
// Workloads alive at once (slots of the static table).
inline constexpr unsigned kMaxWorkloads = 256;

const char* kind_name(Kind kind);
bool parse_kind(lib::StringView text, Kind& out);

struct SpawnResult {
    unsigned spawned = 0;
    uint64_t ids[kMaxSpawnCount] = {}; // thread ids of the spawned threads, in order
    bool failed = false;               // stopped early: `no_slot`, else `error`, says why
    bool no_slot = false;              // kMaxWorkloads are alive
    sched::SpawnError error = sched::SpawnError::OutOfMemory;
};
// Spawns `count` (<= kMaxSpawnCount) threads named "<kind>-<n>" (n counts up per kind since
// boot) that run `kind` for `lifetime_ms`, then return. Call from one thread at a time (the shell).
SpawnResult spawn(Kind kind, unsigned count, sched::Priority priority, uint64_t lifetime_ms);

enum class StopOutcome : uint8_t {
    Stopped,       // the workload has exited and its thread has been freed
    StillRunning,  // asked; it had not finished within the timeout (it exits when it next looks)
    AlreadyEnding, // its lifetime was over and it was already on its way out
    NotAWorkload,  // no live workload thread has this id
};
struct StopResult {
    StopOutcome outcome = StopOutcome::NotAWorkload;
    char name[sched::kThreadNameBytes] = {};
    uint64_t waited_ms = 0; // from the request until it had exited (or until stop() gave up)
};
// Asks the workload thread `thread_id` to stop and waits up to `timeout_ms` for it to exit.
// Call from a thread that may sleep, the same one that spawns.
StopResult stop(uint64_t thread_id, uint64_t timeout_ms);

// Workload threads alive now (slots in use).
unsigned live_count();

} // namespace kernel::workloads
