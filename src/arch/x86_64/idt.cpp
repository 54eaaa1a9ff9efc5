#include "arch/x86_64/idt.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/gdt.h"

// isr.S: the address of each vector's entry stub.
extern "C" const uint64_t isr_stub_table[256];

namespace arch {

namespace {

constexpr uint8_t kGatePresent = 0x80;
constexpr uint8_t kGateInterrupt64 = 0x0e; // clears IF on entry, unlike a trap gate

alignas(16) constinit IdtGate g_idt[256]{};

void set_gate(uint8_t vector, uint64_t handler, uint8_t ist, uint8_t dpl)
{
    IdtGate& gate = g_idt[vector];
    gate.offset_low = static_cast<uint16_t>(handler);
    gate.selector = kKernelCodeSelector;
    gate.ist = ist & 0x7;
    gate.type_attributes = kGatePresent | static_cast<uint8_t>((dpl & 3) << 5) | kGateInterrupt64;
    gate.offset_mid = static_cast<uint16_t>(handler >> 16);
    gate.offset_high = static_cast<uint32_t>(handler >> 32);
    gate.reserved = 0;
}

} // namespace

void idt_init()
{
    for (unsigned v = 0; v < 256; ++v)
        set_gate(static_cast<uint8_t>(v), isr_stub_table[v], 0, 0);
    // These can strike when the current stack is unusable (an overflow that faulted, an NMI or
    // machine check in the middle of a stack switch), so they always get a fresh one.
    g_idt[8].ist = kIstDoubleFault;
    g_idt[2].ist = kIstNmi;
    g_idt[18].ist = kIstMachineCheck;

    const DescriptorTablePointer idtr{sizeof(g_idt) - 1, reinterpret_cast<uint64_t>(g_idt)};
    asm volatile("lidt %0" : : "m"(idtr) : "memory");
}

void idt_configure_gate(uint8_t vector, uint8_t ist, uint8_t dpl)
{
    set_gate(vector, isr_stub_table[vector], ist, dpl);
}

const IdtGate& idt_gate(uint8_t vector) { return g_idt[vector]; }

} // namespace arch
