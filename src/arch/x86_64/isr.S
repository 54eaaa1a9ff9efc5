// Interrupt entry stubs. Each vector's stub makes the stack uniform (a dummy error code where the CPU
// pushes none, then the vector number) and jumps to isr_common, which completes an
// arch::InterruptFrame (interrupt_frame.h), calls interrupt_dispatch and resumes whichever frame
// that returns; the Loom of Fate will switch threads by returning another thread's frame.
//
// No swapgs yet: the Heartwood has no user mode and no per-CPU GS base.

    .altmacro

// Vectors for which the CPU pushes an error code: #DF #TS #NP #SS #GP #PF #AC #CP #VC #SX.
.macro ISR_STUB n
    .p2align 4
isr_stub_\n:
    .if (\n == 8) || (\n == 10) || (\n == 11) || (\n == 12) || (\n == 13) || (\n == 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    pushq $0
    .endif
    pushq $\n
    jmp isr_common
.endm

.macro ISR_ADDRESS n
    .quad isr_stub_\n
.endm

    .section .text
    .p2align 4
    .type isr_common, @function
isr_common:
    // Reverse order of the fields in InterruptFrame: r15 ends up at the lowest address.
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld                         // the ABI requires DF clear at a call
    movq %rsp, %rdi             // argument: the frame
    // The CPU aligned RSP to 16 before pushing its 40 bytes, so the 176-byte frame leaves it
    // aligned already; force it anyway so a hand-made frame cannot misalign the C++ side.
    andq $-16, %rsp
    // A fake call frame (interrupted rip, interrupted rbp) lets the panic backtrace walk from
    // interrupt_dispatch into the interrupted code.
    pushq 17*8(%rdi)
    pushq %rbp
    movq %rsp, %rbp
    call interrupt_dispatch
    movq %rax, %rsp             // resume the frame the dispatcher chose
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp              // vector and error code
    iretq
    .size isr_common, . - isr_common

    .set vector, 0
    .rept 256
    ISR_STUB %vector
    .set vector, vector + 1
    .endr

    .section .rodata
    .p2align 3
    .global isr_stub_table
    .type isr_stub_table, @object
isr_stub_table:
    .set vector, 0
    .rept 256
    ISR_ADDRESS %vector
    .set vector, vector + 1
    .endr
    .size isr_stub_table, . - isr_stub_table

    .section .note.GNU-stack, "", @progbits
