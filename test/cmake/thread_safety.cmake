# Clang's thread-safety analysis (-Wthread-safety -Werror) over the kernel sources with the kernel's
# flags and the cross toolchain's freestanding headers, then over the host tests' generic sources:
# data marked AETHELOS_GUARDED_BY is only touched with its lock held (src/lib/thread_safety.h).
add_test(NAME check:thread-safety
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-thread-safety.sh --toolchain-prefix ${AETHELOS_TOOLCHAIN_PREFIX})
set_tests_properties(check:thread-safety PROPERTIES LABELS check TIMEOUT 300)
