#pragma once
// The two cascaded 8259A PICs. After pic_init they deliver IRQ 0..15 as vectors 32..47 (clear of
// the CPU's exception vectors 0..31) with every line masked; a line is unmasked when a handler is
// registered for it (register_irq_handler) or explicitly with pic_unmask.
#include <stdint.h>

namespace arch {

void pic_init();

void pic_mask(uint8_t irq);
void pic_unmask(uint8_t irq);
bool pic_is_masked(uint8_t irq);
// Master mask in bits 0..7, slave mask in bits 8..15 (a set bit means masked).
uint16_t pic_mask_bits();

void pic_send_eoi(uint8_t irq);

// In-service register of both PICs (master in bits 0..7).
uint16_t pic_read_isr();

// For IRQ 7 and 15, checks whether the PIC really raised the line: a line that drops before the
// CPU acknowledges it shows up as a spurious IRQ 7 (or 15) with no in-service bit. A spurious IRQ is
// counted and must not get a normal EOI; for a spurious IRQ 15 this already sent the EOI the master
// still needs for its cascade line. Always false for other lines.
bool pic_handle_spurious(uint8_t irq);

// Spurious interrupts seen: PIC IRQ 7/15 plus the local APIC's spurious vector.
uint64_t spurious_irq_count();
void count_spurious_irq();

} // namespace arch
