#pragma once
// The Heartwood's last words, declared where every room can reach them: a panic prints the
// message, the caller, the registers and a backtrace on every console, then halts the CPU (or, in
// ktest mode, ends QEMU with kExitPanic). The kernel room defines panic_message (kernel/panic.cpp);
// on the host, test/support/host_panic.cpp throws kernel::HostPanic instead so tests can catch it.
//
//   kernel::panic("Mana Pool: page {:#x} freed twice", addr);
#include <stddef.h>
#include <stdint.h>

#include "lib/format.h"

namespace arch {
struct InterruptFrame;
}

namespace kernel {

// `frame`: the interrupted context when panicking from an exception handler (its registers are
// printed and the backtrace starts at its rip/rbp), else nullptr.
// `caller`: the code address to blame; 0 means "whoever called panic_message".
[[noreturn]] void panic_message(const char* msg, const arch::InterruptFrame* frame = nullptr, uint64_t caller = 0);

namespace detail {
inline constexpr size_t kPanicBufferSize = 512;
// One buffer for formatted panic messages: a panic may come from a tiny or broken stack.
inline char g_panic_buffer[kPanicBufferSize];
} // namespace detail

// Formats like lib::format (truncating to 511 characters) and panics. Never inlined, so its
// return address is the call site that gets blamed.
template <typename... Args>
[[noreturn, gnu::noinline, gnu::cold]] void panic(const char* fmt, const Args&... args)
{
    const auto caller = reinterpret_cast<uint64_t>(__builtin_return_address(0));
    lib::format(detail::g_panic_buffer, detail::kPanicBufferSize, fmt, args...);
    panic_message(detail::g_panic_buffer, nullptr, caller);
}

} // namespace kernel
