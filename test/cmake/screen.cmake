# The framebuffer console: its generic renderer and the generated 8x16 font in the host
# tests, and the screen test that boots the ISO under OVMF and reads the glyphs off a
# QEMU screendump.
find_file(AETHELOS_FONT_PF2 ascii.pf2 PATHS /usr/share/grub /usr/share/grub2 NO_DEFAULT_PATH)
if(NOT AETHELOS_FONT_PF2)
  message(FATAL_ERROR "GRUB's ascii.pf2 not found: install grub-common, or pass -DAETHELOS_FONT_PF2=<font.pf2>")
endif()
find_program(AETHELOS_PYTHON3 python3 REQUIRED)
set(HOST_FONT_SOURCE ${CMAKE_CURRENT_BINARY_DIR}/generated/font_8x16.cpp)
add_custom_command(
  OUTPUT ${HOST_FONT_SOURCE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/generated
  COMMAND ${AETHELOS_PYTHON3} ${CMAKE_SOURCE_DIR}/scripts/gen-font.py ${AETHELOS_FONT_PF2} ${HOST_FONT_SOURCE}
  DEPENDS ${CMAKE_SOURCE_DIR}/scripts/gen-font.py ${AETHELOS_FONT_PF2}
  COMMENT "Generating the 8x16 console font for the host tests")
list(APPEND HOST_GENERIC_SOURCES ${SRC}/drivers/framebuffer_render.cpp ${HOST_FONT_SOURCE})

# Boots aethelos.iso under OVMF, waits for the shell prompt, takes a screendump
# (kept as logs/screen-uefi.png) and finds the banner and the prompt drawn in the font.
add_test(NAME qemu:screen-uefi
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-screen-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos.iso
          --firmware uefi --font ${AETHELOS_FONT_PF2} --png ${CMAKE_BINARY_DIR}/logs/screen-uefi.png
          --log ${CMAKE_BINARY_DIR}/logs/screen-uefi.log --timeout 150)
set_tests_properties(qemu:screen-uefi PROPERTIES LABELS qemu TIMEOUT 165)

# Any valid GRUB entry: SeaBIOS booting the kernel from a hand-written entry that holds only the
# `multiboot2` line (no gfxpayload=text), so GRUB hands over a VBE framebuffer. The screen must
# carry the banner and prompt drawn by the kernel's framebuffer console, and every ktest must
# pass there too (they may not assume our grub.cfg).
add_test(NAME qemu:screen-bios-framebuffer
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-screen-test.sh --elf ${CMAKE_BINARY_DIR}/kernel/aethelos.elf
          --firmware bios --font ${AETHELOS_FONT_PF2} --png ${CMAKE_BINARY_DIR}/logs/screen-bios-framebuffer.png
          --log ${CMAKE_BINARY_DIR}/logs/screen-bios-framebuffer.log --timeout 150)
set_tests_properties(qemu:screen-bios-framebuffer PROPERTIES LABELS qemu TIMEOUT 165)
add_test(NAME qemu:ktest-bios-framebuffer
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-boot-test.sh --elf ${CMAKE_BINARY_DIR}/kernel/aethelos-test.elf
          --plain-entry --cmdline "ktest log=info" --firmware bios
          --log ${CMAKE_BINARY_DIR}/logs/ktest-bios-framebuffer.log --timeout 300)
set_tests_properties(qemu:ktest-bios-framebuffer PROPERTIES LABELS qemu TIMEOUT 330)
