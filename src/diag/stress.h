#pragma once
// Stress mode: `stress=<seconds>` on the kernel command line.
//
// The Heartwood weaves 256 threads through the Loom of Fate for that long, at the configured
// timer rate (hz=, 1000 by default), and watches them from the boot thread, raised to Critical:
//   hog      compute-bound, never yields: Normal (16 + 12 with a 1-tick quantum), Low 20, Idle 16
//   churn    kmalloc/kfree of 1 B..64 KiB with pattern checks on every block: Normal 32, Low 16,
//            Idle 8, and High 8 that rest a tick every 256 operations
//   sleeper  sleeps 1..20 ms again and again, never waking early: Critical 8, High 16, Normal 24,
//            Low 16 (the Critical ones also measure how late they wake)
//   contend  increments a shared counter under an IrqSpinLock, checking nobody else is inside:
//            Normal 24 (2-tick quantum), Low 12, Idle 12
//   mutex    the same under the sleeping sync::Mutex, holding it across a one-tick sleep so the
//            others block and are handed it in turn: Critical 12 (a hand-off to a thread that
//            waits for a starvation boost would stall the whole queue of waiters)
//   spawner  spawns short-lived Critical children that allocate and exit; joins three, detaches
//            the fourth (so the reaper works too): Normal 4
// Below Critical everything competes with the hogs, so Low and Idle threads (and, under this
// load, High ones) progress through the Loom's starvation boost (sched/policy.h).
//
// Every second the monitor checks: the heap's and the frame allocator's invariants, every
// worker's stack canary (each worker paints its own stack from the guard page up with a pattern
// of its own; the lowest 1 KiB must stay intact) and the stack-protector canary value, a
// statistics snapshot's sums, and that no worker reported a broken invariant. Every progress
// window (the Loom's bound for 256 threads, 500 ms + 258 quanta, plus 1 s for Critical work,
// rounded up to whole seconds: 5 s at the default quantum) every worker must have made progress:
// iterations grew, it was given the CPU, and for the compute-bound ones below High the sampled
// CPU time grew. At the end all workers are stopped and joined, detached children reaped, and:
// the Mana Pool holds exactly what it held before (heap bytes in use, frames outside the heap),
// both shared counters equal the sum of their contenders' increments, no thread waited Ready
// longer than the window, and the longest spinlock and mutex holds (TSC cycles, calibrated
// against the timer) stay within their bounds. A per-group table (iterations, CPU ticks, runs,
// longest Ready wait, boosts) and the deepest stack use are printed.
//
// The verdict is one line "stress: PASS ..." or "stress: FAIL <reason>", followed by
// "1 passed, 0 failed" / "0 passed, 1 failed" (the summary scripts/qemu-test.sh judges).
#include <stdint.h>

namespace kernel::stress {

// Runs the stress load for `seconds` (> 0) from the boot thread (after sched::init, interrupts
// on) and prints the verdict. Returns whether it passed.
bool run(uint32_t seconds);

// run(), then leaves QEMU through isa-debug-exit with kExitPass / kExitFail (on real hardware
// the port write does nothing and the CPU halts).
[[noreturn]] void run_and_exit(uint32_t seconds);

} // namespace kernel::stress
