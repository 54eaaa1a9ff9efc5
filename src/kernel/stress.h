#pragma once
// Stress mode: `stress=<seconds>` on the kernel command line.
//
// The Heartwood weaves a mixed load through the Loom of Fate for that long, at the configured
// timer rate, and watches it:
//   hog      compute-bound, never yields (Normal x2, Low, Idle)
//   churn    kmalloc/kfree churn with pattern checks on every block (Normal; High, which rests a
//            tick every 256 operations so it does not monopolise the CPU)
//   sleeper  sleeps 1..20 ms again and again, checking it never wakes early (Critical, High,
//            Normal, Low)
//   contend  increments a shared counter under an IrqSpinLock, checking nobody else is inside
//            (Normal x2, Low)
//   mutex    the same under the sleeping sync::Mutex, so waiters block and are handed the lock
//            (Normal x2)
//   spawner  spawns short-lived threads that allocate and exit; joins three, detaches the fourth
//            (so the reaper works too)
// Every check period (2 s) it verifies: the heap's and the frame allocator's invariants, a
// statistics snapshot's sums, that no worker reported a broken invariant, and that every worker
// made progress in the period (iterations grew for all; sampled CPU time grew for the
// compute-bound ones: hogs, Normal churn and contend — a sleeper may legitimately never be on the
// CPU when a tick fires). At the end all workers are stopped and joined, detached children
// reaped, and the Mana Pool must hold exactly what it held before (heap bytes in use, frames
// outside the heap) and both shared counters must equal the sum of their contenders' increments.
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
