#pragma once
// The Heartwood's power-off: ACPI S5 through the PM1 control registers (tables parsed by
// kernel/acpi_tables.h from the RSDP GRUB handed over), then the power-off ports of the usual
// emulators, then — when nothing took — a message that the machine may be switched off.
#include "lib/format.h"

namespace kernel::acpi {

// Reports each step on `out`. Call from a thread that may sleep, holding no lock (enabling ACPI
// waits for the firmware). Never returns: it ends with interrupts off and the CPU halted.
[[noreturn]] void power_off(lib::FormatSink& out);

} // namespace kernel::acpi
