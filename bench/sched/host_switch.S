// The Loom of Fate's switch routine, for the host benchmark (bench/sched/sched_bench.cpp).
//
// Same instruction sequence as the kernel's arch_context_switch (src/arch/x86_64/context_switch.S),
// same arguments, same stack layout, so the host measures the very work the Heartwood does per
// switch in that routine:
//
//   void host_context_switch(uint64_t* save_sp,    // rdi: where the outgoing context's rsp goes
//                            uint64_t load_sp,     // rsi: the incoming context's saved rsp
//                            void* save_fpu,       // rdx: outgoing 512-byte, 16-aligned FXSAVE area
//                            const void* load_fpu) // rcx: incoming FXSAVE area
//
// What differs from the kernel, all outside this routine: the kernel's caller (sched::switch_locked)
// also writes TSS.RSP0 (thread_set_kernel_stack) and runs with the scheduler's IrqSpinLock held and
// interrupts off; the benchmark calls the routine directly. fxsave64/fxrstor64 are unprivileged, so
// they run here exactly as in ring 0 (the host kernel's XSAVE-enabled CR4 does not change them).
//
// host_context_switch_nofpu is the same routine without the FXSAVE/FXRSTOR pair: the difference
// between the two is what the eager FPU policy costs per switch.

    .text
    .p2align 4
    .global host_context_switch
    .type host_context_switch, @function
host_context_switch:
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
    .size host_context_switch, . - host_context_switch

    .p2align 4
    .global host_context_switch_nofpu
    .type host_context_switch_nofpu, @function
host_context_switch_nofpu:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size host_context_switch_nofpu, . - host_context_switch_nofpu

// A new context's first instructions, as arch_thread_trampoline: r12 = function, r13 = argument.
    .p2align 4
    .global host_thread_trampoline
    .type host_thread_trampoline, @function
host_thread_trampoline:
    xorl %ebp, %ebp
    movq %r13, %rdi
    call *%r12              // never returns
    ud2
    .size host_thread_trampoline, . - host_thread_trampoline

    .section .note.GNU-stack, "", @progbits
