#pragma once
// Workloads the Eldarin shell's `spawn` starts: detached kernel threads that load the Loom of
// Fate and the Mana Pool for a fixed lifetime, then exit on their own (so their memory returns).
//   hog      compute-bound, never yields or blocks
//   churn    kmalloc/kfree churn; each block carries a pattern checked before it is freed
//   sleeper  sleeps 1..20 ms at a time, checks it never woke early
//   contend  contends for one shared sync::Mutex, checks mutual exclusion
// Broken invariants are logged as errors (the threads keep going).
#include <stddef.h>
#include <stdint.h>

#include "lib/string.h"
#include "sched/scheduler.h"

namespace kernel::workloads {

enum class Kind : uint8_t { Hog, Churn, Sleeper, Contend };
inline constexpr unsigned kKindCount = 4;
inline constexpr unsigned kMaxSpawnCount = 64;

const char* kind_name(Kind kind);
bool parse_kind(lib::StringView text, Kind& out);

struct SpawnResult {
    unsigned spawned = 0;
    bool failed = false;                         // stopped early; `error` says why
    sched::SpawnError error = sched::SpawnError::OutOfMemory;
};
// Spawns `count` detached threads named "<kind>-<n>" (n counts up per kind since boot) that run
// `kind` for `lifetime_ms`, then return.
SpawnResult spawn(Kind kind, unsigned count, sched::Priority priority, uint64_t lifetime_ms);

} // namespace kernel::workloads
