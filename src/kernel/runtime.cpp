#include "kernel/runtime.h"

#include "kernel/panic.h"

extern "C" {

using InitFunction = void (*)();
extern const InitFunction __init_array_start[];
extern const InitFunction __init_array_end[];

uintptr_t __stack_chk_guard = kernel::kStackGuardLinkTimeValue;

// The canary of the function that called us no longer matches: its stack frame was overwritten.
// Nothing on this path may itself be protected, or a smashed frame here would recurse.
[[noreturn, gnu::noinline, gnu::no_stack_protector]] void __stack_chk_fail()
{
    kernel::panic_message("stack smashing detected", nullptr, reinterpret_cast<uint64_t>(__builtin_return_address(0)));
}

// A pure virtual function was called: an object used during its construction or destruction.
[[noreturn]] void __cxa_pure_virtual()
{
    kernel::panic_message("pure virtual function called", nullptr,
                          reinterpret_cast<uint64_t>(__builtin_return_address(0)));
}

// The Heartwood never exits, so destructors of static objects are never registered (the build
// uses -fno-use-cxa-atexit, which calls atexit; both are here so either setting links).
void* __dso_handle = &__dso_handle;
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }
int atexit(void (*)()) { return 0; }

} // extern "C"

namespace kernel {

void run_global_constructors()
{
    static bool done = false;
    if (done)
        return;
    done = true;
    for (const InitFunction* fn = __init_array_start; fn != __init_array_end; ++fn) {
        // 0 and -1 are list terminators in the old .ctors convention; skip them if present.
        const auto value = reinterpret_cast<uintptr_t>(*fn);
        if (value != 0 && value != ~uintptr_t{0})
            (*fn)();
    }
}

} // namespace kernel
