// The per-boot deliberate faults behind `fault=<name>` (see fault_inject.h). Each one must end in
// a panic with its specific report; returning means the fault went unnoticed.
#include "diag/fault_inject.h"

#include <stdint.h>

#include "lib/log.h"
#include "mm/kmalloc.h"
#include "sched/scheduler.h"

namespace kernel::fault {

namespace {

// Keeps the compiler from proving the recursion endless (and from warning about it).
volatile bool g_keep_recursing = true;

// 256 bytes of frame per level: a 16 KiB stack is gone after ~60 levels.
[[gnu::noinline]] void recurse(volatile uint8_t* caller_frame, uint64_t depth)
{
    volatile uint8_t frame[256];
    frame[0] = static_cast<uint8_t>(depth);
    frame[255] = caller_frame != nullptr ? caller_frame[0] : 0;
    if (g_keep_recursing)
        recurse(frame, depth + 1);
    frame[1] = frame[0]; // work after the call: no tail call
}

void overflow_thread(void*) { recurse(nullptr, 0); }

void stack_overflow()
{
    // On a Loom of Fate thread: its stack has the unmapped guard (the boot stack's guard is
    // checked by the boot ktests).
    auto thread = sched::spawn(&overflow_thread, nullptr, "stack-overflow", sched::Priority::Normal);
    if (!thread) {
        lib::log::error("fault: cannot spawn the overflowing thread: {}", sched::to_string(thread.error()));
        return;
    }
    sched::join(*thread);
}

volatile size_t g_smash_extra = 0;

// Overwrites everything between its array and the saved frame pointer (the canary lies in
// between, wherever the compiler put it) and leaves the return address alone, so the epilogue's
// canary check is what stops it. Not instrumented: UBSan (debug builds) would see the store
// leave the array and report that first.
[[gnu::noinline, gnu::no_sanitize("undefined")]] void smash_own_frame()
{
    char buffer[16];
    volatile char* p = buffer;
    const auto reach = static_cast<size_t>(static_cast<char*>(__builtin_frame_address(0)) - buffer) + g_smash_extra;
    for (size_t i = 0; i < reach; ++i)
        p[i] = 'A';
    asm volatile("" : : "r"(buffer) : "memory");
}

void heap_overflow(size_t size, size_t past_end)
{
    auto* p = static_cast<volatile uint8_t*>(mm::kmalloc(size));
    if (p == nullptr) {
        lib::log::error("fault: kmalloc({}) failed", size);
        return;
    }
    for (size_t i = 0; i < past_end; ++i)
        p[size + i] = 0x41;
    mm::kfree(const_cast<uint8_t*>(p)); // the red zone check runs here
}

void use_after_free()
{
    auto* p = static_cast<volatile uint8_t*>(mm::kmalloc(64));
    if (p == nullptr)
        return;
    mm::kfree(const_cast<uint8_t*>(p));
    p[32] = 0x41;
    // The freed slot is the next one its slab hands out; the poison check runs then. A few
    // tries in case an interrupt handler took it first (what they get back is never freed: the
    // boot is about to end either way).
    for (int i = 0; i < 64; ++i)
        if (mm::kmalloc(64) == p)
            break;
}

volatile uint64_t g_null_address = 0;

void null_deref()
{
    uint64_t value;
    // Through asm: a C++ null dereference would be caught by UBSan (debug builds) first.
    asm volatile("movq (%1), %0" : "=r"(value) : "r"(g_null_address) : "memory");
    lib::log::error("fault: read {:#x} from address 0", value);
}

} // namespace

void provoke(const char* name)
{
    const lib::StringView which(name);
    lib::log::info("fault: provoking '{}' on purpose", name);
    if (which == "stack_overflow")
        stack_overflow();
    else if (which == "stack_smash")
        smash_own_frame();
    else if (which == "heap_overflow_1")
        heap_overflow(64, 1);
    else if (which == "heap_overflow_32")
        heap_overflow(3000, 32);
    else if (which == "use_after_free")
        use_after_free();
    else if (which == "null_deref")
        null_deref();
    else
        lib::log::error("fault: no such fault '{}'", name);
}

} // namespace kernel::fault
