#pragma once
// Fault injection (`fault=<name>`, the names and what each provokes: kernel/fault_names.h).
// Test image only.
#include "kernel/fault_names.h"

namespace kernel::fault {

// Provokes fault `name` (one of kNames). Returns only if the fault went undetected.
void provoke(const char* name);

} // namespace kernel::fault
