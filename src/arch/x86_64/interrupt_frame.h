#pragma once
// The register state of an interrupted context, as laid out on the stack by isr.S (lowest address
// first). isr.S hard-codes these offsets; the static_asserts below pin them.
#include <stddef.h>
#include <stdint.h>

namespace arch {

struct InterruptFrame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax; // pushed by the common stub
    uint64_t vector, error_code;                                                      // pushed by per-vector stubs
    uint64_t rip, cs, rflags, rsp, ss;                                                // pushed by the CPU
};
static_assert(sizeof(InterruptFrame) == 22 * 8);
static_assert(offsetof(InterruptFrame, rax) == 14 * 8);
static_assert(offsetof(InterruptFrame, vector) == 15 * 8);
static_assert(offsetof(InterruptFrame, error_code) == 16 * 8);
static_assert(offsetof(InterruptFrame, rip) == 17 * 8);
static_assert(offsetof(InterruptFrame, ss) == 21 * 8);

} // namespace arch
