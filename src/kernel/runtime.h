#pragma once
// The C++ runtime the freestanding Heartwood provides for itself: global constructors, the
// stack-protector canary and the few ABI hooks GCC's code calls. (operator new/delete belong to
// the Mana Pool.)
#include <stdint.h>

namespace kernel {

// Runs the constructors in .init_array (lowest priority number first, then link order). Called
// once, at the top of kernel_main; later calls do nothing.
void run_global_constructors();

// The canary's value until boot.S replaces it with a random one before kernel_main.
inline constexpr uintptr_t kStackGuardLinkTimeValue = 0x2f8d5c1e9a7b3600;

} // namespace kernel

// Set by boot.S (RDRAND, or TSC mixed with the boot information pointer), read by the code that
// -fstack-protector inserts. Never changes after kernel_main starts.
extern "C" uintptr_t __stack_chk_guard;
