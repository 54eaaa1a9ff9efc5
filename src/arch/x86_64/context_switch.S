// The Loom of Fate's context switch (see sched/thread.h, arch::thread_context_switch).
//
//   void arch_context_switch(arch::ThreadContext* from, // rdi: the outgoing thread's context
//                            arch::ThreadContext* to)   // rsi: the incoming thread's context
//
// ThreadContext (sched/thread.h): the saved rsp at offset 0, the 512-byte, 16-aligned FXSAVE area
// at offset 16 (thread_arch.cpp asserts both).
//
// Only the SysV callee-saved registers need saving: the caller (a C++ function) already assumes
// every other register is clobbered by the call. Interrupts are off (the scheduler lock is held)
// and RFLAGS.IF is restored by the lock release in the incoming thread, so RFLAGS is not saved.
// FPU/SSE state is switched eagerly with fxsave64/fxrstor64: the Heartwood is built with
// -mgeneral-regs-only, so only code that opts in touches it, and ~100 cycles per switch buys
// no #NM trap, no owner tracking and no state that outlives its thread.

    .set CONTEXT_SP, 0
    .set CONTEXT_FPU, 16

    .section .text
    .p2align 4
    .global arch_context_switch
    .type arch_context_switch, @function
// arch::thread_context_switch(ThreadContext& from, ThreadContext& to) (sched/thread.h) takes the
// same two pointers in the same registers, so it is this very routine: no C++ wrapper and no
// extra jump on every switch. (_ZN4arch21thread_context_switchERNS_13ThreadContextES1_ is its
// Itanium-ABI name; a changed signature no longer links.)
    .global _ZN4arch21thread_context_switchERNS_13ThreadContextES1_
    .type _ZN4arch21thread_context_switchERNS_13ThreadContextES1_, @function
_ZN4arch21thread_context_switchERNS_13ThreadContextES1_:
arch_context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    fxsave64 CONTEXT_FPU(%rdi)
    movq %rsp, CONTEXT_SP(%rdi)
    movq CONTEXT_SP(%rsi), %rsp
    fxrstor64 CONTEXT_FPU(%rsi)
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size arch_context_switch, . - arch_context_switch
    .size _ZN4arch21thread_context_switchERNS_13ThreadContextES1_, . - arch_context_switch

// A new thread's first instructions: arch_context_switch "returns" here with r12 = the start
// function and r13 = its argument (planted by thread_context_init). rbp = 0 ends backtraces.
    .p2align 4
    .global arch_thread_trampoline
    .type arch_thread_trampoline, @function
arch_thread_trampoline:
    xorl %ebp, %ebp
    movq %r13, %rdi
    call *%r12              // [[noreturn]]: the start function ends the thread
    ud2
    .size arch_thread_trampoline, . - arch_thread_trampoline

    .section .note.GNU-stack, "", @progbits
