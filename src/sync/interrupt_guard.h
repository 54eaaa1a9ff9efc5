#pragma once
// kernel::sync::InterruptGuard: saves the local interrupt flag (RFLAGS.IF on x86_64), disables interrupts
// for its lifetime and restores the saved state on exit, so guards nest:
//
//   {
//       sync::InterruptGuard guard;   // cli; IF was saved
//       ...                           // no interrupt handler runs here on this CPU
//   }                                 // sti only if IF was set when the guard was made
//
// [[nodiscard]], non-copyable and non-movable. The logic lives in arch/cpu.h (arch code and
// kernel::time use it before sync exists in their layering); this alias is the name the rest of the
// kernel uses, so there is exactly one implementation.
//
// Namespace: everything in src/sync lives in kernel::sync, not a top-level `sync`, because POSIX
// declares a global function ::sync() (<unistd.h>) and the host tests see it; code inside namespace
// kernel (or with `using namespace kernel;`) still writes sync::InterruptGuard.
//
// Disabling interrupts also keeps the Loom of Fate from preempting (preemption happens from the
// timer interrupt), but it does not raise the preempt count: code that may call preempt_enable()
// or take locks inside should prefer an IrqSpinLock or a PreemptGuard.
#include "arch/cpu.h"

namespace kernel::sync {

using InterruptGuard = arch::InterruptGuard;

} // namespace kernel::sync
