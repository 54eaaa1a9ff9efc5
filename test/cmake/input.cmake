# Input: the PS/2 scancode decoder is generic and runs in the host tests (the byte ring is a header).
list(APPEND HOST_GENERIC_SOURCES ${SRC}/drivers/keyboard_decoder.cpp)

# Keys typed on the PS/2 keyboard through QEMU's monitor (sendkey) reach Eldarin (< 40 s each).
add_test(NAME qemu:keyboard-bios
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-keyboard-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos.iso
          --firmware bios --log ${CMAKE_BINARY_DIR}/logs/keyboard-bios.log --timeout 120)
set_tests_properties(qemu:keyboard-bios PROPERTIES LABELS qemu TIMEOUT 135)
# A machine without an 8042: a clear boot message, and the shell still answers on serial.
add_test(NAME qemu:keyboard-absent
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-keyboard-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos.iso
          --firmware bios --no-8042 --log ${CMAKE_BINARY_DIR}/logs/keyboard-absent.log --timeout 120)
set_tests_properties(qemu:keyboard-absent PROPERTIES LABELS qemu TIMEOUT 135)
# The same keys under OVMF (slower to boot): only in make test-full.
add_test(NAME qemu:keyboard-uefi
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-keyboard-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos.iso
          --firmware uefi --log ${CMAKE_BINARY_DIR}/logs/keyboard-uefi.log --timeout 60)
set_tests_properties(qemu:keyboard-uefi PROPERTIES LABELS "qemu;full" TIMEOUT 70)
