#pragma once
// Kernel symbol lookup for panics and backtraces. The table lives in the image's .ksyms section,
// generated at build time from the first link pass (scripts/gen-ksyms.sh).
#include <stddef.h>
#include <stdint.h>

namespace kernel {

// The name (demangled) of the kernel symbol containing `addr`, storing addr - symbol start in
// *offset_out when offset_out is non-null. nullptr when no symbol covers addr: the table is empty
// or malformed, addr lies below the first symbol, or past the end of a symbol whose size is known.
const char* symbolize(uint64_t addr, uint64_t* offset_out = nullptr);

// The start address of the symbol whose name is exactly `name`, or 0. Linear: for tests and
// debugging, not hot paths.
uint64_t symbol_address(const char* name);

// Number of entries in the table (0 when the image was linked without one).
size_t symbol_count();

} // namespace kernel
