#pragma once
// A recovery point: the kernel's own setjmp/longjmp, for the fault probes (kernel/panic.h) that
// let a test provoke a fatal report on purpose and carry on. Only callee-saved registers, the
// stack pointer, the resume address and RFLAGS (so IF comes back as it was) are kept: the kernel
// is built with -mgeneral-regs-only, so there is no FPU/SSE state to restore.
#include <stddef.h>
#include <stdint.h>

namespace arch {

struct RecoveryPoint {
    uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip, rflags;
};
static_assert(offsetof(RecoveryPoint, rsp) == 48 && offsetof(RecoveryPoint, rflags) == 64); // recovery.S

} // namespace arch

// Saves the caller's context; returns 0, and 1 again when arch_recovery_resume resumes it. The frame
// that called it must still be live when resuming (resuming only ever goes up the same stack).
extern "C" [[gnu::returns_twice]] int arch_recovery_save(arch::RecoveryPoint* point);
// Abandons everything below the saved frame and returns 1 from its arch_recovery_save.
extern "C" [[noreturn]] void arch_recovery_resume(const arch::RecoveryPoint* point);
