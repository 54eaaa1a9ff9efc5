/* arch_recovery_save / arch_recovery_resume: see recovery.h. Offsets match arch::RecoveryPoint. */
    .section .text
    .globl arch_recovery_save
    .type arch_recovery_save, @function
arch_recovery_save:
    movq %rbx, 0(%rdi)
    movq %rbp, 8(%rdi)
    movq %r12, 16(%rdi)
    movq %r13, 24(%rdi)
    movq %r14, 32(%rdi)
    movq %r15, 40(%rdi)
    leaq 8(%rsp), %rax             /* the caller's rsp once this call has returned */
    movq %rax, 48(%rdi)
    movq (%rsp), %rax              /* the return address */
    movq %rax, 56(%rdi)
    pushfq
    popq %rax
    movq %rax, 64(%rdi)
    xorl %eax, %eax
    ret
    .size arch_recovery_save, . - arch_recovery_save

    .globl arch_recovery_resume
    .type arch_recovery_resume, @function
arch_recovery_resume:
    movq 0(%rdi), %rbx
    movq 8(%rdi), %rbp
    movq 16(%rdi), %r12
    movq 24(%rdi), %r13
    movq 32(%rdi), %r14
    movq 40(%rdi), %r15
    movq 48(%rdi), %rsp
    pushq 64(%rdi)
    popfq                          /* IF, DF and AC as they were at the save */
    movl $1, %eax
    jmpq *56(%rdi)
    .size arch_recovery_resume, . - arch_recovery_resume

    .section .note.GNU-stack, "", @progbits
