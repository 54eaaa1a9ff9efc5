#include "arch/x86_64/qemu.h"

#include "arch/cpu.h"
#include "arch/x86_64/io.h"

namespace arch {

[[noreturn]] void qemu_exit(uint8_t code)
{
    // A byte write is accepted whatever iosize the device was given.
    outb(kQemuDebugExitPort, code);
    halt_forever();
}

} // namespace arch
