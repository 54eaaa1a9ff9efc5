#include "arch/x86_64/arch_init.h"

#include "arch/cpu.h"
#include "arch/timer.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/idt.h"
#include "arch/x86_64/pic.h"
#include "lib/log.h"
#include "time/time.h"

namespace arch {

namespace {

// (thread_arch.cpp has its own file-local write_cr4; one in cpu.h would clash with it.)
void set_cr4(uint64_t v) { asm volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

// SMEP: the kernel may not execute a user page; SMAP: nor read or write one (outside stac/clac).
// The Heartwood maps no user pages yet, so both only turn a stray user pointer into a clean fault.
void enable_supervisor_protections()
{
    uint64_t cr4 = read_cr4();
    const bool smep = cpu_has_smep();
    const bool smap = cpu_has_smap();
    if (smep)
        cr4 |= kCr4Smep;
    if (smap)
        cr4 |= kCr4Smap;
    set_cr4(cr4);
    lib::log::info("Attunement: SMEP {}, SMAP {}", smep ? "on" : "not supported by this CPU",
                   smap ? "on" : "not supported by this CPU");
}

} // namespace

void init_cpu()
{
    interrupts_disable();
    gdt_init();
    idt_init();
    pic_init();
    enable_supervisor_protections();
    lib::log::debug("Attunement: GDT, TSS and IDT loaded; PIC remapped to vectors 32-47, all lines masked");
}

void start_timer(uint32_t hz) { kernel::time::init(system_timer(), hz); }

} // namespace arch
