#pragma once
// The Loom of Fate's vocabulary: thread states, the five priorities, and the internal priority
// levels the run queue is indexed by.
//
// ## States and their names
// The Rust original named four states (Weaving, Resting, Tangled, Fading); the preemptive Loom must
// tell "on the CPU" from "waiting for the CPU", so a fifth word, Poised, is added. The mapping is
// one to one, and user-facing text prints the word with the precise meaning next to it
// ("Weaving (running)"):
//
//   ThreadState  word      meaning
//   Running      Weaving   on the CPU right now (exactly one per CPU, the idle thread included)
//   Ready        Poised    runnable, waiting in the run queue for the CPU
//   Sleeping     Resting   waiting for a tick (in the timer queue); wakes by itself
//   Blocked      Tangled   waiting for an event (a wait queue, join); only wake() frees it
//   Exited       Fading    finished; waiting to be reaped
//
// ## Priorities and levels
// The plan's five priorities are what threads ask for. Internally the run queue has one FIFO per
// *level*, level 0 being the most urgent; a thread's effective level is its priority's level
// unless the Loom boosted it. One extra level, Boost, sits between Critical and High: a ready
// thread that starved past the bound is moved there (see policy.h). It is its own level rather
// than High's FIFO so that boosted threads queue strictly FIFO among themselves (which bounds how
// long any of them waits) and so that the statistics can tell a boost from a native High.
//
//   level  name      who
//   0      critical  Priority::Critical (never boosted; keep its work short: nothing preempts it)
//   1      boost     any non-critical thread, for one turn, after starving past the bound
//   2      high      Priority::High
//   3      normal    Priority::Normal
//   4      low       Priority::Low
//   5      idle      Priority::Idle: runs only when nothing above is ready (or when boosted)
//   6      -         the idle thread itself (kIdleThreadLevel): never queued, runs `hlt` when the
//                    run queue is empty
#include <stdint.h>

namespace sched {

enum class ThreadState : uint8_t { Ready, Running, Sleeping, Blocked, Exited };
inline constexpr unsigned kThreadStateCount = 5;

enum class Priority : uint8_t { Critical, High, Normal, Low, Idle };
inline constexpr unsigned kPriorityCount = 5;

// Run-queue levels (0 = most urgent).
inline constexpr uint8_t kLevelCritical = 0;
inline constexpr uint8_t kLevelBoost = 1;
inline constexpr uint8_t kLevelHigh = 2;
inline constexpr uint8_t kLevelNormal = 3;
inline constexpr uint8_t kLevelLow = 4;
inline constexpr uint8_t kLevelIdle = 5;
inline constexpr unsigned kLevelCount = 6;
// The idle thread's level: below every queue level, so any queued thread outranks it.
inline constexpr uint8_t kIdleThreadLevel = kLevelCount;

static_assert(kLevelCount <= 64, "the run queue's non-empty bitmap is one 64-bit word");

constexpr unsigned index_of(ThreadState state) { return static_cast<unsigned>(state); }
constexpr unsigned index_of(Priority priority) { return static_cast<unsigned>(priority); }

// The queue level a thread of this priority lives at when not boosted.
constexpr uint8_t level_of(Priority priority)
{
    switch (priority) {
    case Priority::Critical: return kLevelCritical;
    case Priority::High: return kLevelHigh;
    case Priority::Normal: return kLevelNormal;
    case Priority::Low: return kLevelLow;
    case Priority::Idle: return kLevelIdle;
    }
    return kLevelNormal;
}

// Level a is more urgent than level b.
constexpr bool outranks(uint8_t a, uint8_t b) { return a < b; }

// AethelOS's word for a state: "Weaving", "Poised", "Resting", "Tangled", "Fading".
constexpr const char* state_name(ThreadState state)
{
    switch (state) {
    case ThreadState::Running: return "Weaving";
    case ThreadState::Ready: return "Poised";
    case ThreadState::Sleeping: return "Resting";
    case ThreadState::Blocked: return "Tangled";
    case ThreadState::Exited: return "Fading";
    }
    return "?";
}

// The precise technical meaning: "running", "ready", "sleeping", "blocked", "exited".
constexpr const char* state_meaning(ThreadState state)
{
    switch (state) {
    case ThreadState::Running: return "running";
    case ThreadState::Ready: return "ready";
    case ThreadState::Sleeping: return "sleeping";
    case ThreadState::Blocked: return "blocked";
    case ThreadState::Exited: return "exited";
    }
    return "?";
}

constexpr const char* priority_name(Priority priority)
{
    switch (priority) {
    case Priority::Critical: return "Critical";
    case Priority::High: return "High";
    case Priority::Normal: return "Normal";
    case Priority::Low: return "Low";
    case Priority::Idle: return "Idle";
    }
    return "?";
}

constexpr const char* level_name(uint8_t level)
{
    switch (level) {
    case kLevelCritical: return "critical";
    case kLevelBoost: return "boost";
    case kLevelHigh: return "high";
    case kLevelNormal: return "normal";
    case kLevelLow: return "low";
    case kLevelIdle: return "idle";
    case kIdleThreadLevel: return "idle-thread";
    }
    return "?";
}

} // namespace sched
