#pragma once
// Deliberate faults that must halt the Heartwood, one per boot: `fault=<name>` on the kernel
// command line provokes one right after boot (kernel_main), in test mode, so the panic ends QEMU
// with the panic exit code. scripts/qemu-fault-test.sh boots each and checks the report's text.
// Faults a test can recover from are ktests instead (kernel/ktests/fault_ktest.cpp).
//
//   stack_overflow    a thread recurses off its 16 KiB stack into the unmapped guard: #DF on IST1,
//                     reported as a kernel stack overflow naming the slot and the thread
//   stack_smash       a function writes past its array over the stack-protector canary
//   heap_overflow_1   one byte past a 64-byte kmalloc object (slab red zone, found at kfree)
//   heap_overflow_32  32 bytes past a 3000-byte kmalloc block (medium red zone, found at kfree)
//   use_after_free    a write into a freed 64-byte object (poison, found when handed out again)
//   null_deref        a load from address 0 with no probe armed: the plain #PF report
//
// The names live here, in the kernel room, because the command-line parser checks them (on the
// host too) in every image; the faults themselves are diagnostics (diag/fault_inject.cpp), linked
// only into the test image.
#include <stddef.h>

#include "lib/string.h"

namespace kernel::fault {

inline constexpr const char* kNames[] = {
    "stack_overflow", "stack_smash", "heap_overflow_1", "heap_overflow_32", "use_after_free", "null_deref",
};
inline constexpr size_t kCount = sizeof(kNames) / sizeof(kNames[0]);
inline constexpr size_t kMaxNameBytes = 32; // including the NUL

inline bool is_known(lib::StringView name)
{
    for (const char* known : kNames)
        if (name == known)
            return true;
    return false;
}

} // namespace kernel::fault
