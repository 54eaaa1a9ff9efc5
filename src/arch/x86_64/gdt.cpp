#include "arch/x86_64/gdt.h"

#include "arch/x86_64/cpu.h"

namespace arch {

namespace {

// Descriptor fields (Intel SDM vol. 3A, 3.4.5). Base and limit are ignored in 64-bit mode for code
// and data, but the usual flat values keep the table readable in a debugger.
constexpr uint64_t kPresent = 1ull << 47;
constexpr uint64_t kDplUser = 3ull << 45;
constexpr uint64_t kCodeOrData = 1ull << 44;
constexpr uint64_t kExecutable = 1ull << 43;
constexpr uint64_t kReadWrite = 1ull << 41; // readable code / writable data
constexpr uint64_t kLongMode = 1ull << 53;
constexpr uint64_t kDefaultSize32 = 1ull << 54;
constexpr uint64_t kGranularity4K = 1ull << 55;
constexpr uint64_t kFlatLimit = 0xffffull | (0xfull << 48);

constexpr uint64_t kKernelCode =
    kFlatLimit | kPresent | kCodeOrData | kExecutable | kReadWrite | kLongMode | kGranularity4K;
constexpr uint64_t kKernelData = kFlatLimit | kPresent | kCodeOrData | kReadWrite | kDefaultSize32 | kGranularity4K;
constexpr uint64_t kUserCode = kKernelCode | kDplUser;
constexpr uint64_t kUserData = kKernelData | kDplUser;
static_assert(kKernelCode == 0x00af9a000000ffff && kKernelData == 0x00cf92000000ffff);
static_assert(kUserCode == 0x00affa000000ffff && kUserData == 0x00cff2000000ffff);

constexpr uint64_t kTssTypeAvailable = 0x9ull << 40;

// The GDT must be writable: `ltr` marks the TSS descriptor busy.
alignas(16) constinit uint64_t g_gdt[kGdtEntries] = {
    0,              // null
    kKernelCode,    // 0x08
    kKernelData,    // 0x10
    kUserData,      // 0x18, placeholder until ring 3 exists
    kUserCode,      // 0x20, placeholder until ring 3 exists
    0,           0, // 0x28 TSS, filled in at run time (its address is not a constant expression)
};
static_assert(kTssSelector / 8 + 1 < kGdtEntries);

alignas(16) constinit TaskStateSegment g_tss{};

// Emergency stacks. No guard pages yet: overflowing one runs into the next (or other .bss).
alignas(16) constinit uint8_t g_double_fault_stack[kIstStackSize]{};
alignas(16) constinit uint8_t g_nmi_stack[kIstStackSize]{};
alignas(16) constinit uint8_t g_machine_check_stack[kIstStackSize]{};

uint64_t stack_top(uint8_t (&stack)[kIstStackSize]) { return reinterpret_cast<uint64_t>(stack) + kIstStackSize; }

} // namespace

void gdt_init()
{
    g_tss.ist[kIstDoubleFault - 1] = stack_top(g_double_fault_stack);
    g_tss.ist[kIstNmi - 1] = stack_top(g_nmi_stack);
    g_tss.ist[kIstMachineCheck - 1] = stack_top(g_machine_check_stack);
    // An I/O bitmap offset at or past the limit means "no bitmap": ring 3 gets no ports.
    g_tss.iomap_base = sizeof(TaskStateSegment);

    const uint64_t base = reinterpret_cast<uint64_t>(&g_tss);
    const uint64_t limit = sizeof(TaskStateSegment) - 1;
    g_gdt[kTssSelector / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | kTssTypeAvailable | kPresent |
        (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    g_gdt[kTssSelector / 8 + 1] = base >> 32;

    const DescriptorTablePointer gdtr{sizeof(g_gdt) - 1, reinterpret_cast<uint64_t>(g_gdt)};
    asm volatile("lgdt %0" : : "m"(gdtr) : "memory");

    // Data segments: SS must hold a valid data selector at CPL 0 for iretq; FS/GS get null
    // (their bases come from MSRs when they are needed).
    asm volatile("mov %0, %%ds\n\t"
                 "mov %0, %%es\n\t"
                 "mov %0, %%ss\n\t"
                 "mov %1, %%fs\n\t"
                 "mov %1, %%gs"
                 :
                 : "r"(static_cast<uint32_t>(kKernelDataSelector)), "r"(0u)
                 : "memory");

    // CS can only change through a control transfer: a far return to the next instruction.
    uint64_t scratch;
    asm volatile("leaq 1f(%%rip), %0\n\t"
                 "pushq %1\n\t"
                 "pushq %0\n\t"
                 "lretq\n"
                 "1:"
                 : "=&r"(scratch)
                 : "i"(static_cast<uint64_t>(kKernelCodeSelector))
                 : "memory");

    asm volatile("ltr %w0" : : "r"(kTssSelector) : "memory");
}

void set_kernel_stack(uint64_t rsp0) { g_tss.rsp[0] = rsp0; }

StackRange ist_stack(uint8_t ist)
{
    uint8_t* stack = nullptr;
    switch (ist) {
    case kIstDoubleFault: stack = g_double_fault_stack; break;
    case kIstNmi: stack = g_nmi_stack; break;
    case kIstMachineCheck: stack = g_machine_check_stack; break;
    default: return StackRange{0, 0};
    }
    const uint64_t bottom = reinterpret_cast<uint64_t>(stack);
    return StackRange{bottom, bottom + kIstStackSize};
}

const TaskStateSegment& tss() { return g_tss; }
const uint64_t* gdt_entries() { return g_gdt; }

} // namespace arch
