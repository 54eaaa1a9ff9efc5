// Host stand-in for the kernel's panic: generic code under test panics by throwing, so a
// Catch2 test can assert that bad input is caught (REQUIRE_THROWS_AS(..., kernel::HostPanic)).
#include "support/host_panic.h"

#include "kernel/panic.h"

namespace kernel {

[[noreturn]] void panic_message(const char* msg, const arch::InterruptFrame*, uint64_t) { throw HostPanic(msg); }

bool test_mode() { return true; }

} // namespace kernel
