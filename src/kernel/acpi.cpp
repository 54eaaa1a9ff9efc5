// The Heartwood's power-off: the port I/O half (the table parsing is in acpi_tables.cpp).
#include "kernel/acpi.h"

#include "arch/cpu.h"
#include "arch/x86_64/io.h"
#include "arch/x86_64/memory_layout.h"
#include "kernel/acpi_tables.h"
#include "kernel/boot_info.h"
#include "sched/scheduler.h"

namespace kernel::acpi {

namespace {

// ACPI tables live in firmware-reserved RAM below 4 GiB on every machine we boot; anything the
// physmap does not cover is out of reach.
Bytes read_physmap(void*, uint64_t phys, size_t length)
{
    if (phys >= arch::kPhysMapSize || length > arch::kPhysMapSize - phys)
        return {};
    return Bytes(arch::phys_to_virt(PhysicalAddress(phys)).as_ptr<const uint8_t>(), length);
}

// About `us` microseconds: port 0x80 writes take ~1 us on PC hardware (we cannot sleep with
// interrupts off, and the timer is not needed for this).
void delay_us(unsigned us)
{
    for (unsigned i = 0; i < us; ++i)
        arch::io_wait();
}

// Writes SLP_TYP first, then SLP_EN with it, keeping the register's other bits (as the
// specification's sleeping sequence does).
void write_sleep(uint16_t port, uint8_t slp_typ)
{
    uint16_t value = arch::inw(port);
    value = static_cast<uint16_t>(value & ~(7u << kSlpTypShift | kSlpEn));
    value = static_cast<uint16_t>(value | slp_typ << kSlpTypShift);
    arch::outw(port, value);
    arch::outw(port, static_cast<uint16_t>(value | kSlpEn));
}

// SCI_EN set means the machine is in ACPI mode; otherwise ask the firmware through SMI_CMD and
// wait up to 3 s, as the specification allows it.
void enable_acpi(const Fadt& fadt, lib::FormatSink& out)
{
    const uint16_t pm1a = fadt.pm1a_control.port;
    if ((arch::inw(pm1a) & kSciEn) != 0)
        return;
    if (fadt.smi_command == 0 || fadt.acpi_enable == 0 || fadt.smi_command > 0xFFFF) {
        lib::format_to(out, "  ACPI mode is off and the firmware offers no way to switch it on; trying anyway\n");
        return;
    }
    arch::outb(static_cast<uint16_t>(fadt.smi_command), fadt.acpi_enable);
    for (int waited_ms = 0; waited_ms < 3000; waited_ms += 10) {
        if ((arch::inw(pm1a) & kSciEn) != 0) {
            lib::format_to(out, "  ACPI mode switched on through SMI_CMD {:#x} after ~{} ms\n", fadt.smi_command,
                           waited_ms);
            return;
        }
        sched::sleep_for(10);
    }
    lib::format_to(out, "  the firmware did not switch ACPI mode on within 3 s; trying anyway\n");
}

struct EmulatorPort {
    uint16_t port;
    uint16_t value;
    const char* who;
};
// PM1a_CNT with SLP_TYP for S5 and SLP_EN, where well-known virtual machines put it.
constexpr EmulatorPort kEmulatorPorts[] = {
    {0x604, 0x2000, "QEMU (q35 and pc, PM base 0x600)"},
    {0xB004, 0x2000, "Bochs and older QEMU"},
    {0x4004, 0x3400, "VirtualBox"},
};

} // namespace

void power_off(lib::FormatSink& out)
{
    const RsdpInfo& rsdp = kernel::boot_info().rsdp;
    const PhysicalReader reader{&read_physmap, nullptr};
    auto plan = plan_power_off(reader, rsdp.data());
    if (plan) {
        const Fadt& fadt = plan->fadt;
        lib::format_to(out, "Powering off through ACPI S5: PM1a_CNT port {:#x}, SLP_TYPa {}", fadt.pm1a_control.port,
                       plan->s5.slp_typa);
        if (fadt.pm1b_control.present())
            lib::format_to(out, ", PM1b_CNT port {:#x}, SLP_TYPb {}", fadt.pm1b_control.port, plan->s5.slp_typb);
        lib::format_to(out, " (ACPI revision {}, FADT revision {})\n", plan->rsdp.revision, fadt.revision);
        enable_acpi(fadt, out);
        lib::format_to(out, "The Heartwood goes to rest. Farewell.\n");
        arch::interrupts_disable();
        write_sleep(fadt.pm1a_control.port, plan->s5.slp_typa);
        if (fadt.pm1b_control.present())
            write_sleep(fadt.pm1b_control.port, plan->s5.slp_typb);
        delay_us(200'000);
        lib::format_to(out, "shutdown: the machine ignored ACPI S5; trying the emulators' power-off ports\n");
    } else {
        char why[96];
        lib::format_to(out, "shutdown: ACPI cannot power off here ({}); trying the emulators' power-off ports\n",
                       describe(plan.error(), why, sizeof(why)));
        lib::format_to(out, "The Heartwood goes to rest. Farewell.\n");
        arch::interrupts_disable();
    }
    for (const EmulatorPort& e : kEmulatorPorts) {
        arch::outw(e.port, e.value);
        delay_us(50'000);
    }
    lib::format_to(out, "\nThe Heartwood is still; nothing more will run. It is now safe to turn off your computer.\n");
    arch::halt_forever();
}

} // namespace kernel::acpi
