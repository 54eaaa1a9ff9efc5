#pragma once
#include <stdint.h>

namespace arch {

// QEMU's isa-debug-exit device (started with -device isa-debug-exit,iobase=0xf4,iosize=0x04).
inline constexpr uint16_t kQemuDebugExitPort = 0xf4;

// Ends QEMU with exit status (code << 1) | 1 (codes in kernel/test_mode.h). On a machine without
// the device the write does nothing and the CPU halts instead.
[[noreturn]] void qemu_exit(uint8_t code);

} // namespace arch
