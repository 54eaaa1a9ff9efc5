# The boot matrix: the test ISO (cmdline `ktest`) under each firmware, memory size and CPU model.
# Every cell must boot, pass every ktest (matrix.* checks the Mana Pool's totals against the
# firmware's map, and that frames come from above 4 GiB when the map has RAM there), and report a
# usable-RAM figure that fits -m (scripts/qemu-test.sh). Names: qemu:matrix-<firmware>-<memory>-<cpu>.
#
# `make test` runs the cells in MATRIX_FAST (label qemu); the others carry the label `full` too and
# run in `make test-full`. Measured times are in docs/testing.md.
#
# OVMF (Debian's edk2 2022.11) page-faults inside the firmware with -m 32M, before GRUB starts, and
# with -m 64M GRUB under OVMF cannot read the kernel from the test ISO ("failure reading sector");
# 96M boots. So the smallest UEFI cell is 128M (the kernel itself passes at 32M under SeaBIOS).
set(MATRIX_FAST bios-32M-qemu64 uefi-4G-max)
foreach(fw bios uefi)
  foreach(mem 32M 512M 4G 8G)
    if(fw STREQUAL "uefi" AND mem STREQUAL "32M")
      set(mem 128M)
    endif()
    foreach(cpu qemu64 max)
      set(cell ${fw}-${mem}-${cpu})
      add_test(NAME qemu:matrix-${cell}
        COMMAND ${QEMU_TEST} --iso ${CMAKE_BINARY_DIR}/aethelos-test.iso --firmware ${fw} --memory ${mem}
                --cpu ${cpu} --log ${CMAKE_BINARY_DIR}/logs/matrix-${cell}.log --timeout 600)
      if(cell IN_LIST MATRIX_FAST)
        set(labels qemu matrix)
      else()
        set(labels qemu matrix full)
      endif()
      set_tests_properties(qemu:matrix-${cell} PROPERTIES LABELS "${labels}" TIMEOUT 660)
      # Guests above 4 GiB touch all their RAM (heap.oom_path_and_leak_check fills it): one at a time.
      if(mem STREQUAL "4G" OR mem STREQUAL "8G")
        set_tests_properties(qemu:matrix-${cell} PROPERTIES RESOURCE_LOCK aethelos-large-guest)
      endif()
    endforeach()
  endforeach()
endforeach()

# The soak: the stress load for 10 minutes (qemu:stress-bios runs it for 60 s in `make test`).
add_test(NAME qemu:soak-bios
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-stress.sh --elf ${CMAKE_BINARY_DIR}/kernel/aethelos-test.elf
          --seconds 600 --firmware bios --log ${CMAKE_BINARY_DIR}/logs/soak-bios.log --timeout 1860)
set_tests_properties(qemu:soak-bios PROPERTIES LABELS "qemu;full" TIMEOUT 1900)
