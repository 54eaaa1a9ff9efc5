// The kernel's panic for the fuzzers. Unlike test/support/host_panic.cpp (which throws so that a
// Catch2 test can expect a panic) a panic here is always a finding: the harnesses only make calls
// that are valid by construction and feed untrusted bytes only to parsers, which must reject bad
// input with an error. So it prints the message and aborts, and libFuzzer saves the input.
#include <cstdio>
#include <cstdlib>

#include "kernel/panic.h"

namespace kernel {

[[noreturn]] void panic_message(const char* msg, const arch::InterruptFrame*, uint64_t)
{
    std::fprintf(stderr, "kernel::panic: %s\n", msg);
    std::abort();
}

bool test_mode() { return true; }

} // namespace kernel
