# Deliberate faults that must halt the Heartwood, one boot each (kernel/fault_inject.h): the report's
# text and a clean halt (panic exit code, no nested panic, no triple fault) are checked by
# scripts/qemu-fault-test.sh. About 2 s of CPU and 3-6 s of wall time per boot. The recoverable
# faults are ktests (kernel/ktests/fault_ktest.cpp), run by qemu:ktest-*.
set(FAULTS stack_overflow stack_smash null_deref)
# The Mana Pool's red zones and poison are debug checks (on unless the kernel is a Release build,
# as in src/CMakeLists.txt); a Release kernel rightly carries on past these.
if(NOT CMAKE_BUILD_TYPE STREQUAL "Release")
  list(APPEND FAULTS heap_overflow_1 heap_overflow_32 use_after_free)
endif()
foreach(fault ${FAULTS})
  add_test(NAME qemu:fault-${fault}
    COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-fault-test.sh --elf ${CMAKE_BINARY_DIR}/kernel/aethelos-test.elf
            --fault ${fault} --firmware bios --log ${CMAKE_BINARY_DIR}/logs/fault-${fault}.log --timeout 60)
  set_tests_properties(qemu:fault-${fault} PROPERTIES LABELS qemu TIMEOUT 90)
endforeach()
