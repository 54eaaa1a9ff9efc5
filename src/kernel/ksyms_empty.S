/*
 * The empty kernel symbol table, linked into pass 1 of the two-pass link. Pass 2 links the table
 * that scripts/gen-ksyms.sh generates from pass 1 instead. Format: see src/kernel/symbols.cpp.
 */
    .section .ksyms, "a"
    .balign 8
    .ascii "AEKSYMS1"   /* magic + format version */
    .quad 0             /* symbol count */

    .section .note.GNU-stack, "", @progbits
