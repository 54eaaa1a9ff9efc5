#include "kernel/diagnostics.h"

namespace kernel::diag {

// Defined in the test image by diag/hooks.cpp; an undefined weak reference links as address 0.
extern const Hooks g_hooks __attribute__((weak));

const Hooks* hooks() { return &g_hooks; }

} // namespace kernel::diag
