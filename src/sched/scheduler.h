#pragma once
// The Loom of Fate: the kernel's preemptive thread scheduler (one CPU).
//
//   sched::init();                                    // after the heap and the timer; the caller
//                                                     // becomes the thread "heartwood"
//   auto t = sched::spawn(&work, arg, "worker", sched::Priority::Normal);
//   if (!t) { /* t.error(): out of memory or stack slots */ }
//   sched::join(*t);                                  // waits, then frees its TCB and stack
//
// ## How switching works
// Every switch is a kernel-stack switch (arch::thread_context_switch) made with the scheduler lock
// (an IrqSpinLock) held; the thread that resumes releases it with the interrupt state *it* saved.
//  - Voluntary: yield, sleep_for, join, park, exit switch directly.
//  - Preemption: the timer tick only accounts (Policy::on_tick charges the tick and decides whether
//    a switch is due, setting need_resched). At the outermost interrupt exit (arch irq-exit hook)
//    with preempt_count() == 0 the Loom switches right there, on the interrupted thread's kernel
//    stack: the interrupt frame stays on that stack and is resumed (iretq) when the thread is
//    switched back in. With the count above 0 (an IrqSpinLock or PreemptGuard is held) the
//    request stays pending and preempt_enable() calls the resched hook when the count drops to 0.
//    So code under those guards is never switched away from midway.
//  - FPU/SSE state: saved eagerly at every switch (fxsave/fxrstor), see context_switch.S.
//
// ## Lifetime
// Threads end by returning from their entry or calling exit(). join() (once per thread) waits for
// the end and frees everything: the Thread (ObjectCache "thread"), its kernel stack frames and
// their mapping. A detach()ed thread is freed by the reaper (the idle thread) after it exits.
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"
#include "sched/policy.h"
#include "sched/thread.h"
#include "sched/thread_state.h"
#include "sched/trace.h"

namespace sched {

enum class SpawnError : uint8_t {
    NotInitialized,
    OutOfMemory,     // no memory for the Thread or its stack frames
    NoStackSlot,     // the kernel-stack area is full
    InvalidArgument, // null entry
};
const char* to_string(SpawnError error);

// Sets up the Loom: FPU/SSE and the kernel-stack area, the thread cache, the calling code as
// thread "heartwood" (Normal priority), the idle thread, and the tick / irq-exit / resched /
// owner-name hooks. Needs mm::init_heap and kernel::time::init; interrupts may be on or off.
void init();
bool initialized();

// Creates a Ready thread running entry(arg). `name` is copied (truncated to 31 characters).
// `quantum_ticks` 0 means the default (kDefaultQuantumMs worth of ticks). A new thread that
// outranks the caller runs before spawn returns (when the caller is preemptible).
lib::Expected<Thread*, SpawnError> spawn(ThreadEntry entry, void* arg, const char* name,
                                         Priority priority = Priority::Normal, uint32_t quantum_ticks = 0);

// Ends the calling thread. Not for the boot thread or the idle thread.
[[noreturn]] void exit();
// Waits until `thread` has exited, then frees it. Each thread is joined at most once and must not
// be detached; a thread cannot join itself.
void join(Thread* thread);
// `thread` frees itself (through the reaper) when it exits; it must not be joined afterwards.
void detach(Thread* thread);
// Gives up the CPU to threads at the same or a more urgent level.
void yield();
// Sleeps at least `ms` milliseconds (rounded up to whole ticks; woken at the tick that ends it).
void sleep_for(uint64_t ms);
void sleep_ticks(uint64_t ticks);
// Changes a thread's base priority (takes effect immediately, preempting if it should).
void set_priority(Thread* thread, Priority priority);
// Sets a thread's quantum in ticks (0 = the default); the remaining quantum is clamped to it,
// otherwise it takes effect at the next refill. Ignored for the idle thread and exited threads.
void set_quantum(Thread* thread, uint32_t quantum_ticks);
// The same for every live thread except idle (one lock acquisition); returns how many changed.
size_t set_quantum_all(uint32_t quantum_ticks);
// The running thread (nullptr before init()).
Thread* current();

// Minimal blocking for the sync primitives: park() blocks the caller until unpark(it) (returns at
// once if an unpark already arrived since the last park: one token, so no wake-up is lost).
void park();
void unpark(Thread* thread);

inline constexpr uint32_t kDefaultQuantumMs = 10;

// Whole-Loom counters (a consistent copy, taken with interrupts off).
struct SchedulerCounters {
    uint64_t context_switches = 0;
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    uint64_t irq_exit_requests = 0; // reschedule requests acted on at interrupt exit
    uint64_t irq_exit_switches = 0; // ... of which switched to another thread
    uint64_t deferred_requests = 0; // reschedule requests acted on by preempt_enable (deferred)
    uint64_t deferred_switches = 0; // ... of which switched to another thread
    uint64_t preemptions = 0;       // involuntary switches with quantum left (outranked)
    uint64_t quantum_expiries = 0;  // quanta that ran out
    uint64_t held_back = 0;         // due switches not requested because timer preemption was off
    uint64_t threads_spawned = 0;
    uint64_t threads_reaped = 0;
    uint64_t threads_live = 0; // incl. heartwood and idle
    uint64_t idle_ticks = 0;
};
SchedulerCounters counters();

// One consistent look at the whole Loom for the statistics snapshot (kernel/stats.h): the
// counters, the policy's counts and event counters, and every live thread (exited but not yet
// reaped ones included), all under a single acquisition of the scheduler lock, so nothing can
// change in between. visit(thread, context) runs with that lock held and interrupts off: it must
// only copy (no blocking, allocating, logging, or locks of rank <= LockRank::kScheduler).
struct LoomSample {
    uint64_t now_ticks = 0; // the policy's clock (the last tick it saw)
    SchedulerCounters counters;
    PolicyCounts counts;
    PolicyCounters policy;
};
using ThreadVisitor = void (*)(const Thread& thread, void* context);
// false (out left as is, nothing visited) before init().
bool sample(LoomSample& out, ThreadVisitor visit, void* context);

// ---- Timer preemption (Eldarin `preempt`) ----
// On (the default): a thread whose quantum runs out is switched out at the next safe point (time
// slicing), and a starvation boost preempts. Off: the Loom no longer asks for a switch because a
// quantum ran out or a boost was given: a thread keeps the CPU until it blocks, yields or exits,
// unless a ready thread has a more urgent *base* priority (a High shell woken by a key or its
// timer still preempts Normal threads; a Critical thread preempts everything) or the idle thread
// is running. Equal priorities then no longer take turns, and lower ones may starve. The policy
// itself is unchanged: quanta, CPU time and boosts are still accounted, so a thread boosted
// meanwhile is still picked first at the next switch (even before the High shell that caused it).
// Switching preemption on again lets a pending expiry switch at once.
// Returns the previous setting.
bool set_timer_preemption(bool enabled);
bool timer_preemption();

// ---- The scheduler trace (sched/trace.h; Eldarin `trace`) ----
// A ring of kTraceCapacity events (switch, preempt, wake, block, spawn, tick, IRQ enter/exit), each
// stamped with the cycle counter; overwrite-oldest. The ring is allocated from the Mana Pool at the
// first trace_start() and kept until trace_release(). Recording happens in the Loom's hooks with
// interrupts off; when tracing is off each hook costs one load and one predicted branch (the IRQ
// observer is not even installed).
inline constexpr size_t kTraceRingBytes = 2 * 1024 * 1024;                       // one buddy block: no rounding waste
inline constexpr size_t kTraceCapacity = kTraceRingBytes / sizeof(trace::Event); // 87381 events

enum class TraceError : uint8_t {
    NotInitialized, // before init()
    OutOfMemory,    // the ring could not be allocated
    Busy,           // tracing is on (for a dump), or a dump is being written (for a start)
};
const char* to_string(TraceError error);

struct TraceStatus {
    bool on = false;
    size_t capacity = 0;
    size_t held = 0;           // events in the ring
    uint64_t recorded = 0;     // since the last start
    uint64_t overwritten = 0;  // lost to the ring's wraparound
    uint64_t names_missed = 0; // threads beyond the name table (shown as "thread N")
};

// Clears the ring and starts recording (restarts if already on).
lib::Expected<TraceStatus, TraceError> trace_start();
// Stops recording (no-op when off); the events stay until the next start.
TraceStatus trace_stop();
// Gives the ring back to the Mana Pool (its events are lost; the next start allocates anew).
// Returns false, changing nothing, while tracing or dumping.
bool trace_release();
TraceStatus trace_status();
// Writes the held events as Chrome trace-event JSON (trace::write_chrome_json). Tracing must be
// off. Runs without the scheduler lock (nothing records meanwhile); the caller chooses where the
// bytes go and keeps other output out of them.
lib::Expected<trace::JsonReport, TraceError> trace_write_json(lib::FormatSink& out);

} // namespace sched
