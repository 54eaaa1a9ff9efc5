#pragma once
#include <stdint.h>

namespace kernel {

// isa-debug-exit codes; QEMU exits with (code << 1) | 1, i.e. 33 / 35 / 37.
inline constexpr uint8_t kExitPass = 0x10;
inline constexpr uint8_t kExitFail = 0x11;
inline constexpr uint8_t kExitPanic = 0x12;

// True when booted with `ktest`: a panic then ends QEMU instead of halting.
bool test_mode();
void set_test_mode(bool on);

} // namespace kernel
