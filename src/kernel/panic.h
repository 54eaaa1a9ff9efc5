#pragma once
// Panics (declared in lib/panic.h, so every room may call them) and the fault probes that tests use
// to provoke a fatal report on purpose and come back.
#include <stddef.h>
#include <stdint.h>

#include "lib/panic.h"

namespace kernel {

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
