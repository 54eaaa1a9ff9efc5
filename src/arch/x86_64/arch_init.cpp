#include "arch/x86_64/arch_init.h"

#include "arch/cpu.h"
#include "arch/timer.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/idt.h"
#include "arch/x86_64/pic.h"
#include "kernel/time.h"
#include "lib/log.h"

namespace arch {

void init_cpu()
{
    interrupts_disable();
    gdt_init();
    idt_init();
    pic_init();
    lib::log::debug("Attunement: GDT, TSS and IDT loaded; PIC remapped to vectors 32-47, all lines masked");
}

void start_timer(uint32_t hz) { kernel::time::init(system_timer(), hz); }

} // namespace arch
