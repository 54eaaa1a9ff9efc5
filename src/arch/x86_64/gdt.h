#pragma once
// The 64-bit GDT and the TSS. In long mode segmentation is mostly gone; the GDT still supplies the
// code segment's privilege level and the TSS, whose RSP0 is the kernel stack for entries from user
// mode and whose IST slots give the worst exceptions a known-good stack.
#include <stdint.h>

namespace arch {

// Selector layout. User data sits below user code so that SYSRET (which loads SS = STAR[63:48] + 8
// and CS = STAR[63:48] + 16) works with STAR[63:48] = kKernelDataSelector.
inline constexpr uint16_t kKernelCodeSelector = 0x08;
inline constexpr uint16_t kKernelDataSelector = 0x10;
inline constexpr uint16_t kUserDataSelector = 0x18 | 3;
inline constexpr uint16_t kUserCodeSelector = 0x20 | 3;
inline constexpr uint16_t kTssSelector = 0x28; // a 16-byte descriptor: GDT slots 5 and 6
inline constexpr unsigned kGdtEntries = 7;

// Interrupt Stack Table slots (1-based as in the IDT gate; 0 means "no stack switch").
inline constexpr uint8_t kIstDoubleFault = 1;
inline constexpr uint8_t kIstNmi = 2;
inline constexpr uint8_t kIstMachineCheck = 3;
inline constexpr uint64_t kIstStackSize = 16 * 1024;

struct [[gnu::packed]] TaskStateSegment {
    uint32_t reserved0;
    uint64_t rsp[3]; // stacks for entries from CPL 3 (only rsp[0] is used: the Heartwood has no rings 1-2)
    uint64_t reserved1;
    uint64_t ist[7]; // ist[0] is IST1
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};
static_assert(sizeof(TaskStateSegment) == 104);

// Loads the GDT, reloads every segment register (CS by a far return) and loads the task register.
void gdt_init();

// The stack the CPU switches to on an interrupt or exception from user mode.
void set_kernel_stack(uint64_t rsp0);

struct StackRange {
    uint64_t bottom; // lowest address
    uint64_t top;    // one past the highest address; the initial stack pointer
    bool contains(uint64_t address) const { return address >= bottom && address < top; }
};

// The static stack behind IST slot `ist` (1..3); an empty range for other slots.
StackRange ist_stack(uint8_t ist);

const TaskStateSegment& tss();
const uint64_t* gdt_entries();

} // namespace arch
