#pragma once
// The 256-entry Interrupt Descriptor Table. Every vector has a stub in isr.S that funnels into
// interrupt_dispatch (interrupts.cpp); all gates are interrupt gates, so IF is clear on entry.
#include <stdint.h>

namespace arch {

// Vector assignments.
inline constexpr uint8_t kExceptionVectors = 32;
inline constexpr uint8_t kIrqBase = 32; // PIC IRQ n arrives as vector kIrqBase + n
inline constexpr uint8_t kIrqCount = 16;
inline constexpr uint8_t kSpuriousVector = 0xff; // reserved for the local APIC's spurious interrupt

// Fills all 256 gates (IST slots for #DF, NMI and #MC) and loads the IDT.
void idt_init();

// Changes one gate after idt_init: `ist` 0..7 (0 = no stack switch), `dpl` 0..3 (3 lets user
// code raise the vector with `int`).
void idt_configure_gate(uint8_t vector, uint8_t ist, uint8_t dpl);

struct [[gnu::packed]] IdtGate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attributes;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;

    uint64_t offset() const
    {
        return offset_low | (static_cast<uint64_t>(offset_mid) << 16) | (static_cast<uint64_t>(offset_high) << 32);
    }
};
static_assert(sizeof(IdtGate) == 16);

const IdtGate& idt_gate(uint8_t vector);

} // namespace arch
