/*
 * The Heartwood's first steps: from GRUB's 32-bit protected mode to kernel_main in the higher half.
 *
 *   _start (32-bit, linked and run at its physical address, section .boot.*)
 *     1. keeps the Multiboot2 magic and info pointer, refuses anything but a Multiboot2 loader;
 *     2. zeroes .bss (which holds the page tables and the boot stack) and takes the boot stack;
 *     3. refuses a CPU without CPUID or long mode, and notes whether it has NX;
 *     4. builds the page tables (below), enables PAE, EFER.LME (+NXE), paging and CR0.WP;
 *     5. far-jumps into 64-bit code, still on the identity map.
 *   boot_higher_half (64-bit, in .text at 0xffffffff8xxxxxxx)
 *     6. reloads the GDT and segments at their higher-half addresses, takes the boot stack there,
 *        removes the identity map, seeds the stack-protector canary, calls kernel_main.
 *
 * Address space built here (arch/x86_64/memory_layout.h has the same numbers):
 *   0x0000000000000000  first 1 GiB identity, 2 MiB pages; only for the switch, gone before kernel_main
 *   0xffff800000000000  physmap: first 4 GiB of physical memory, 2 MiB pages, RW + NX
 *   0xffffffff80000000  + physical: the kernel image from __text_start, 4 KiB pages with the
 *                       permissions of each section (.text RX, .rodata/.ksyms R+NX, .data/.bss RW+NX);
 *                       the page below the boot stack is left unmapped as a guard.
 * Without NX (no CPUID.80000001h:EDX[20]) the NX bits are left clear, since bit 63 is reserved
 * then; W^X still holds for writes, only data stays executable.
 *
 * Multiboot2 header tags: a console-flags tag saying we drive the EGA text console, and an
 * optional framebuffer tag asking for 1024x768x32 (GRUB falls back to 1024x768 at any depth,
 * then to any mode). Under UEFI there is no text mode, so this picks the framebuffer the
 * framebuffer console draws on. Under BIOS, GRUB would obey the tag as well and leave text mode;
 * our grub.cfg files set gfxpayload=text after the multiboot2 command on the "pc" platform
 * (GRUB reads it only at boot) to keep the 80x25 VGA text console there. A BIOS boot that does
 * get a framebuffer still has a screen: the framebuffer console.
 */

#define KERNEL_VMA 0xffffffff80000000
#define V2P(x) ((x) - KERNEL_VMA)

#define MB2_HEADER_MAGIC 0xe85250d6
#define MB2_BOOTLOADER_MAGIC 0x36d76289
#define MB2_ARCH_I386 0
#define MB2_TAG_OPTIONAL 1

#define PTE_PRESENT 0x001
#define PTE_WRITE 0x002
#define PTE_LARGE 0x080            /* 2 MiB page in a PD entry */
#define PTE_NX_HIGH 0x80000000     /* bit 63, as seen in the entry's high dword */

#define KERNEL_PT_COUNT 8          /* 4 KiB page tables for the image: physical 0..16 MiB */
#define PHYSMAP_PD_COUNT 4         /* 4 GiB of 2 MiB pages */
#define BOOT_STACK_SIZE 65536

#define CR0_PE (1 << 0)
#define CR0_WP (1 << 16)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10

#define COM1 0x3f8
#define VGA_TEXT 0xb8000
#define VGA_ATTR 0x4f              /* white on red */

/* ---------------------------------------------------------------------------------------------- */
/* Multiboot2 header: first thing in the first loadable segment (linker.ld puts .multiboot2 there). */

    .section .multiboot2, "a"
    .balign 8
mb2_header:
    .long MB2_HEADER_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header
    .long -(MB2_HEADER_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))

    /* Information request (required): without the command line and memory map we cannot run. */
    .balign 8
mb2_tag_info_request:
    .short 1, 0
    .long mb2_tag_info_request_end - mb2_tag_info_request
    .long 1                        /* boot command line */
    .long 6                        /* memory map */
mb2_tag_info_request_end:

    /* Console flags (optional tag): bit 1 = we support EGA text; bit 0 (console required) clear. */
    .balign 8
    .short 4, MB2_TAG_OPTIONAL
    .long 12
    .long 1 << 1

    /* Framebuffer (optional tag): width, height, depth; GRUB's choice when it cannot oblige. */
    .balign 8
    .short 5, MB2_TAG_OPTIONAL
    .long 20
    .long 1024
    .long 768
    .long 32

    /* End tag. */
    .balign 8
    .short 0, 0
    .long 8
mb2_header_end:

/* ---------------------------------------------------------------------------------------------- */
/* 32-bit entry. Linked at physical addresses; GRUB jumps here with paging off, interrupts off,   */
/* flat segments, EAX = magic, EBX = physical address of the boot information.                   */

    .section .boot.text, "ax"
    .code32
    .globl _start
    .type _start, @function
_start:
    cli
    cld
    /* .data is loaded from the file, so it can be written before .bss is cleared. */
    movl %eax, V2P(boot_multiboot_magic)
    movl %ebx, V2P(boot_multiboot_info)
    cmpl $MB2_BOOTLOADER_MAGIC, %eax
    jne .Lnot_multiboot2

    /* Zero .bss: GRUB already did, but the page tables must not depend on it. */
    movl $V2P(__bss_start), %edi
    movl $V2P(__bss_end), %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    /* The boot stack, by its physical address until paging is on. */
    movl $V2P(boot_stack_top), %esp
    xorl %ebp, %ebp

    /* CPUID exists iff EFLAGS.ID (bit 21) can be toggled. */
    pushfl
    popl %eax
    movl %eax, %ecx
    xorl $(1 << 21), %eax
    pushl %eax
    popfl
    pushfl
    popl %eax
    pushl %ecx
    popfl
    xorl %ecx, %eax
    testl $(1 << 21), %eax
    jz .Lno_long_mode

    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb .Lno_long_mode
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 29), %edx         /* LM */
    jz .Lno_long_mode
    testl $(1 << 20), %edx         /* NX */
    jz 1f
    movl $PTE_NX_HIGH, V2P(boot_nx_high)
1:
    call build_page_tables

    movl $V2P(boot_pml4), %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    cmpl $0, V2P(boot_nx_high)
    je 2f
    orl $EFER_NXE, %eax
2:
    wrmsr
    movl %cr0, %eax
    orl $(CR0_PG | CR0_WP | CR0_PE), %eax
    movl %eax, %cr0                /* long mode active (compatibility mode until CS changes) */

    lgdt boot_gdt_pointer32
    ljmp $KERNEL_CS, $boot_long_mode

.Lnot_multiboot2:
    movl $msg_not_multiboot2, %esi
    jmp boot_fail
.Lno_long_mode:
    movl $msg_no_long_mode, %esi
    jmp boot_fail
    .size _start, . - _start

/*
 * build_page_tables: fills the tables described at the top of this file. All addresses are
 * physical; .bss is already zero. Clobbers eax, ebx, ecx, edx, esi, edi.
 */
    .type build_page_tables, @function
build_page_tables:
    /* PML4: [0] identity (temporary), [256] physmap, [511] kernel. */
    movl $(V2P(boot_pdpt_identity) + PTE_PRESENT + PTE_WRITE), V2P(boot_pml4) + 0 * 8
    movl $(V2P(boot_pdpt_physmap) + PTE_PRESENT + PTE_WRITE), V2P(boot_pml4) + 256 * 8
    movl $(V2P(boot_pdpt_kernel) + PTE_PRESENT + PTE_WRITE), V2P(boot_pml4) + 511 * 8

    /* Identity: one PD of 512 x 2 MiB, executable (we are running from it). */
    movl $(V2P(boot_pd_identity) + PTE_PRESENT + PTE_WRITE), V2P(boot_pdpt_identity)
    movl $V2P(boot_pd_identity), %edi
    movl $(PTE_PRESENT + PTE_WRITE + PTE_LARGE), %eax
    movl $512, %ecx
1:  movl %eax, (%edi)
    addl $(2 << 20), %eax
    addl $8, %edi
    loop 1b

    /* Physmap: PDPT[0..3] -> four PDs, 2048 x 2 MiB covering 0..4 GiB, RW + NX. */
    movl $V2P(boot_pdpt_physmap), %edi
    movl $(V2P(boot_pd_physmap) + PTE_PRESENT + PTE_WRITE), %eax
    movl $PHYSMAP_PD_COUNT, %ecx
2:  movl %eax, (%edi)
    addl $4096, %eax
    addl $8, %edi
    loop 2b
    movl $V2P(boot_pd_physmap), %edi
    xorl %ebx, %ebx                /* index i: physical address = i << 21 */
3:  movl %ebx, %eax
    shll $21, %eax
    orl $(PTE_PRESENT + PTE_WRITE + PTE_LARGE), %eax
    movl %eax, (%edi)
    movl %ebx, %edx
    shrl $11, %edx                 /* bits 32.. of i << 21 */
    orl V2P(boot_nx_high), %edx
    movl %edx, 4(%edi)
    addl $8, %edi
    incl %ebx
    cmpl $(PHYSMAP_PD_COUNT * 512), %ebx
    jb 3b

    /* Kernel: PDPT[510] -> PD, PD[0..7] -> the eight PTs (0xffffffff80000000 + 0..16 MiB). */
    movl $(V2P(boot_pd_kernel) + PTE_PRESENT + PTE_WRITE), V2P(boot_pdpt_kernel) + 510 * 8
    movl $V2P(boot_pd_kernel), %edi
    movl $(V2P(boot_pt_kernel) + PTE_PRESENT + PTE_WRITE), %eax
    movl $KERNEL_PT_COUNT, %ecx
4:  movl %eax, (%edi)
    addl $4096, %eax
    addl $8, %edi
    loop 4b

    /* The image, section by section (linker.ld page-aligns every boundary used here). */
    movl $V2P(__text_start), %esi
    movl $V2P(__text_end), %edi
    movl $PTE_PRESENT, %edx
    xorl %ecx, %ecx
    call map_kernel_range
    movl $V2P(__rodata_start), %esi
    movl $V2P(__rodata_end), %edi
    movl $PTE_PRESENT, %edx
    movl $PTE_NX_HIGH, %ecx
    call map_kernel_range
    movl $V2P(__data_start), %esi
    movl $V2P(__bss_end), %edi
    movl $(PTE_PRESENT + PTE_WRITE), %edx
    movl $PTE_NX_HIGH, %ecx
    call map_kernel_range
    movl $V2P(__ksyms_start), %esi
    movl $V2P(__kernel_end), %edi
    movl $PTE_PRESENT, %edx
    movl $PTE_NX_HIGH, %ecx
    call map_kernel_range

    /* Unmap the guard page below the boot stack: an overflow faults instead of corrupting .bss. */
    movl $V2P(boot_stack_guard), %eax
    shrl $12, %eax
    movl $0, V2P(boot_pt_kernel)(, %eax, 8)
    movl $0, V2P(boot_pt_kernel) + 4(, %eax, 8)
    ret
    .size build_page_tables, . - build_page_tables

/*
 * map_kernel_range: maps physical [esi, edi) (page-aligned) at KERNEL_VMA + physical with the
 * low flag dword edx and the high flag dword ecx (NX is dropped when the CPU has none).
 * Clobbers eax, ebx, ecx, esi.
 */
    .type map_kernel_range, @function
map_kernel_range:
    andl V2P(boot_nx_high), %ecx
1:  cmpl %edi, %esi
    jae 2f
    movl %esi, %eax
    shrl $12, %eax
    movl %esi, %ebx
    orl %edx, %ebx
    movl %ebx, V2P(boot_pt_kernel)(, %eax, 8)
    movl %ecx, V2P(boot_pt_kernel) + 4(, %eax, 8)
    addl $4096, %esi
    jmp 1b
2:  ret
    .size map_kernel_range, . - map_kernel_range

/*
 * boot_fail: prints the NUL-terminated message at esi (physical) on the VGA text screen and on
 * COM1, then halts. Needs no stack: it may run before one exists.
 */
    .type boot_fail, @function
boot_fail:
    /* VGA text, top line (visible when the firmware left text mode on). */
    movl $VGA_TEXT, %edi
    movl %esi, %ebx
1:  movb (%ebx), %al
    testb %al, %al
    jz 2f
    movb $VGA_ATTR, %ah
    movw %ax, (%edi)
    addl $2, %edi
    incl %ebx
    jmp 1b
2:
    /* COM1: 115200 8N1, FIFO on, interrupts off. Harmless where no UART answers. */
    movw $(COM1 + 1), %dx
    xorb %al, %al
    outb %al, %dx                  /* IER = 0 */
    movw $(COM1 + 3), %dx
    movb $0x80, %al
    outb %al, %dx                  /* LCR: DLAB */
    movw $(COM1 + 0), %dx
    movb $1, %al
    outb %al, %dx                  /* divisor low: 115200 baud */
    movw $(COM1 + 1), %dx
    xorb %al, %al
    outb %al, %dx                  /* divisor high */
    movw $(COM1 + 3), %dx
    movb $0x03, %al
    outb %al, %dx                  /* LCR: 8N1 */
    movw $(COM1 + 2), %dx
    movb $0xc7, %al
    outb %al, %dx                  /* FCR: enable + clear FIFOs */
    movw $(COM1 + 4), %dx
    movb $0x03, %al
    outb %al, %dx                  /* MCR: DTR + RTS */

    movl %esi, %ebx
3:  movb (%ebx), %cl
    testb %cl, %cl
    jnz 4f
    cmpl $msg_crlf, %esi           /* message done: add "\r\n" once */
    je 7f
    movl $msg_crlf, %esi
    movl %esi, %ebx
    jmp 3b
4:  movl $100000, %edi             /* bounded wait for THR empty */
5:  movw $(COM1 + 5), %dx
    inb %dx, %al
    testb $0x20, %al
    jnz 6f
    decl %edi
    jnz 5b
6:  movw $COM1, %dx
    movb %cl, %al
    outb %al, %dx
    incl %ebx
    jmp 3b
7:  cli
8:  hlt
    jmp 8b
    .size boot_fail, . - boot_fail

/* 64-bit, still on the identity map: leave for the higher half. */
    .code64
    .type boot_long_mode, @function
boot_long_mode:
    movabsq $boot_higher_half, %rax
    jmpq *%rax
    .size boot_long_mode, . - boot_long_mode

    .section .boot.rodata, "a"
msg_not_multiboot2:
    .asciz "AethelOS: not started by a Multiboot2 loader"
msg_no_long_mode:
    .asciz "AethelOS: this CPU has no 64-bit long mode"
msg_crlf:
    .asciz "\r\n"

    .balign 8
boot_gdt_pointer32:                /* lgdt operand in 32-bit mode: the GDT's physical address */
    .short boot_gdt_end - boot_gdt - 1
    .long V2P(boot_gdt)

/* ---------------------------------------------------------------------------------------------- */
/* 64-bit, higher half.                                                                            */

    .section .text, "ax"
    .code64
    .globl boot_higher_half
    .type boot_higher_half, @function
boot_higher_half:
    movq $boot_stack_top, %rsp
    xorl %ebp, %ebp

    /* The GDT by its higher-half address, then every segment register from it. */
    lgdt boot_gdt_pointer64(%rip)
    movw $KERNEL_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    pushq $KERNEL_CS
    leaq 1f(%rip), %rax
    pushq %rax
    lretq
1:
    /* Drop the identity map; nothing below the higher half is used from here on. */
    movq $0, boot_pml4(%rip)
    movq %cr3, %rax
    movq %rax, %cr3

    /* Stack-protector canary: RDRAND if present (it can transiently fail: retry), else TSC
       mixed with the boot information pointer. */
    movl $1, %eax
    cpuid
    btl $30, %ecx
    jnc .Lcanary_fallback
    movl $16, %ecx
2:  rdrand %rax
    jnc 3f
    cmpq $-1, %rax                 /* some AMD parts return all ones with CF set when broken */
    jne .Lcanary_ready
3:  decl %ecx
    jnz 2b
.Lcanary_fallback:
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    movl boot_multiboot_info(%rip), %edx
    rolq $29, %rdx
    xorq %rdx, %rax
    /* A multiply-xorshift finaliser spreads the few changing TSC bits over the whole word. */
    movq %rax, %rdx
    shrq $33, %rdx
    xorq %rdx, %rax
    movabsq $0xff51afd7ed558ccd, %rdx
    imulq %rdx, %rax
    movq %rax, %rdx
    shrq $33, %rdx
    xorq %rdx, %rax
.Lcanary_ready:
    /* A zero low byte stops string functions from reading or writing past the canary. */
    xorb %al, %al
    testq %rax, %rax
    jnz 4f
    movabsq $0x6a09e667f3bcc900, %rax
4:  movq %rax, __stack_chk_guard(%rip)

    movl boot_multiboot_magic(%rip), %edi
    movl boot_multiboot_info(%rip), %esi
    call kernel_main
    /* kernel_main does not return; if it ever does, stop here. */
    cli
5:  hlt
    jmp 5b
    .size boot_higher_half, . - boot_higher_half

/* ---------------------------------------------------------------------------------------------- */
/* Data.                                                                                           */

    /* Flat 64-bit GDT (same selectors as arch/x86_64/gdt.cpp, which replaces it). The accessed
       bits are preset so the CPU never writes to the table while it sits in .rodata. */
    .section .rodata, "a"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9b000000ffff       /* 0x08: ring 0 code, long mode */
    .quad 0x00cf93000000ffff       /* 0x10: ring 0 data */
boot_gdt_end:
    .balign 8
boot_gdt_pointer64:
    .short boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .data, "aw"
    .balign 4
    .globl boot_multiboot_magic, boot_multiboot_info
boot_multiboot_magic:
    .long 0
boot_multiboot_info:
    .long 0

    .section .bss, "aw", @nobits
    .balign 4
boot_nx_high:                      /* PTE_NX_HIGH if the CPU has NX, else 0 */
    .long 0

    .section .boot_page_tables, "aw", @nobits
    .balign 4096
    .globl boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt_identity:
    .skip 4096
boot_pd_identity:
    .skip 4096
boot_pdpt_physmap:
    .skip 4096
boot_pd_physmap:
    .skip 4096 * PHYSMAP_PD_COUNT
boot_pdpt_kernel:
    .skip 4096
boot_pd_kernel:
    .skip 4096
boot_pt_kernel:
    .skip 4096 * KERNEL_PT_COUNT

    .section .boot_stack, "aw", @nobits
    .balign 4096
    .globl boot_stack_guard, boot_stack_bottom, boot_stack_top
boot_stack_guard:                  /* unmapped */
    .skip 4096
boot_stack_bottom:
    .skip BOOT_STACK_SIZE
boot_stack_top:

    .section .note.GNU-stack, "", @progbits
