#pragma once
// Cheap precondition checks for lib containers. With AETHELOS_DEBUG_CHECKS a
// violated precondition traps at the faulting site (an invalid-opcode fault in
// the kernel, which panics with a frame and backtrace; SIGILL on the host)
// instead of reading out of bounds. Release builds compile them away.

#if defined(AETHELOS_DEBUG_CHECKS) && AETHELOS_DEBUG_CHECKS
#define LIB_DEBUG_CHECK(cond)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) [[unlikely]]                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)
#else
#define LIB_DEBUG_CHECK(cond)                                                                                          \
    do {                                                                                                               \
    } while (0)
#endif
