#pragma once
// The Heartwood's last words. A panic prints the message, the caller, the registers and a
// backtrace on every console, then halts the CPU (or, in ktest mode, ends QEMU with kExitPanic).
//
//   kernel::panic("Mana Pool: page {:#x} freed twice", addr);
//
// Generic code may call it; on the host, test/support/host_panic.cpp throws kernel::HostPanic
// instead so tests can catch it.
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

// ---- Fault probes: provoking a fatal report on purpose (tests) ----
//
//   kernel::CaughtFault caught;
//   const bool hit = kernel::probe_fault(arch::kDivideError, caught, [] { divide_by_zero(); });
//   // hit: the #DE was reported (marked as expected) and execution came back here;
//   // caught.message holds the report's first line.
//
// A probe stands in for the halt at the end of a report: the report is printed as usual (headed
// "fault probe: caught the expected ..." rather than "PANIC"), stored, and execution resumes
// where the probe was armed. It only recovers when doing so leaves the CPU consistent: the fault
// must be the expected one, on the thread that armed the probe, and the preempt count, IRQ nesting
// and (debug builds) the spinlocks this CPU holds must be what they were when it was armed. Anything else is a real panic
// (naming the probe). Whatever the probed code had on its stack is abandoned: no destructors run,
// so it must not hold resources of its own at the fault.

// `expected_vector` for a software panic (panic(), UBSan, the lock and heap checks).
inline constexpr int kProbeSoftwarePanic = -1;

struct CaughtFault {
    int vector = kProbeSoftwarePanic; // the exception vector, or kProbeSoftwarePanic
    uint64_t rip = 0;                 // an exception's faulting rip; a panic's blamed caller
    uint64_t error_code = 0;          // exceptions with an error code
    uint64_t cr2 = 0;                 // page faults: the faulting address
    char message[detail::kPanicBufferSize] = {};
};

// Runs fn(arg) with a probe armed for `expected_vector` (an exception vector < 32, or
// kProbeSoftwarePanic). True when the expected fault was caught (details in `out`), false when
// fn returned normally. Probes do not nest.
bool run_fault_probe(int expected_vector, void (*fn)(void*), void* arg, CaughtFault& out);

template <typename F>
bool probe_fault(int expected_vector, CaughtFault& out, const F& fn)
{
    return run_fault_probe(
        expected_vector, [](void* p) { (*static_cast<const F*>(p))(); }, const_cast<F*>(&fn), out);
}

} // namespace kernel
