# The Eldarin shell driven over the serial line: commands typed, replies checked (< 60 s).
add_test(NAME qemu:shell-bios
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-shell-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos.iso
          --firmware bios --log ${CMAKE_BINARY_DIR}/logs/shell-bios.log --timeout 50)
set_tests_properties(qemu:shell-bios PROPERTIES LABELS qemu TIMEOUT 60)
