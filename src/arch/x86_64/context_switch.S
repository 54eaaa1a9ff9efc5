// The Loom of Fate's context switch (see sched/thread.h, arch::thread_context_switch).
//
//   void arch_context_switch(uint64_t* save_sp,    // rdi: where the outgoing thread's rsp goes
//                            uint64_t load_sp,     // rsi: the incoming thread's saved rsp
//                            void* save_fpu,       // rdx: outgoing 512-byte, 16-aligned FXSAVE area
//                            const void* load_fpu) // rcx: incoming FXSAVE area
//
// Only the SysV callee-saved registers need saving: the caller (a C++ function) already assumes
// every other register is clobbered by the call. Interrupts are off (the scheduler lock is held)
// and RFLAGS.IF is restored by the lock release in the incoming thread, so RFLAGS is not saved.
// FPU/SSE state is switched eagerly with fxsave64/fxrstor64: the Heartwood is built with
// -mgeneral-regs-only, so only code that opts in touches it, and ~100 cycles per switch buys
// no #NM trap, no owner tracking and no state that outlives its thread.

    .section .text
    .p2align 4
    .global arch_context_switch
    .type arch_context_switch, @function
arch_context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    fxsave64 (%rdx)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    fxrstor64 (%rcx)
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size arch_context_switch, . - arch_context_switch

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
