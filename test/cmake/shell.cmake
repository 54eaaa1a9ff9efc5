# The Eldarin shell driven over the serial line: commands typed, replies checked, ending with
# `shutdown` (QEMU must exit by itself with status 0). About 15 s on an idle machine. It spawns
# workloads and runs ktests, so it boots the test image to the shell (aethelos-test-shell.iso).
add_test(NAME qemu:shell-bios
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-shell-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos-test-shell.iso
          --firmware bios --log ${CMAKE_BINARY_DIR}/logs/shell-bios.log --timeout 240)
set_tests_properties(qemu:shell-bios PROPERTIES LABELS qemu TIMEOUT 260)

# A 1000-byte line pasted at once over serial: the line keeps its first 256 characters, rings a
# bell for each one past them, and the next command runs (serial back-pressure, line limit).
# Under OVMF each echoed character redraws on the framebuffer, so the shell falls behind the
# paste: without back-pressure the input ring overflowed there and the Enter was lost.
foreach(fw bios uefi)
  add_test(NAME qemu:shell-paste-${fw}
    COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-shell-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos.iso
            --firmware ${fw} --scenario paste --log ${CMAKE_BINARY_DIR}/logs/shell-paste-${fw}.log --timeout 180)
  set_tests_properties(qemu:shell-paste-${fw} PROPERTIES LABELS qemu TIMEOUT 200)
endforeach()

# The image `make run` boots has no diagnostics: its shell says so for ktest, spawn and kill.
add_test(NAME qemu:shell-run-image
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-shell-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos.iso
          --firmware bios --scenario run-image --log ${CMAKE_BINARY_DIR}/logs/shell-run-image.log --timeout 120)
set_tests_properties(qemu:shell-run-image PROPERTIES LABELS qemu TIMEOUT 140)

# `shutdown` alone (ACPI S5 from the tables GRUB passes on) under SeaBIOS and OVMF.
foreach(fw bios uefi)
  add_test(NAME qemu:shutdown-${fw}
    COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-shell-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos.iso
            --firmware ${fw} --scenario shutdown --log ${CMAKE_BINARY_DIR}/logs/shutdown-${fw}.log --timeout 180)
  set_tests_properties(qemu:shutdown-${fw} PROPERTIES LABELS qemu TIMEOUT 200)
endforeach()

# ACPI table parsing (RSDP -> XSDT/RSDT -> FADT -> DSDT \_S5_) is generic: host tests over
# synthetic tables in test/unit/test_acpi_tables.cpp.
list(APPEND HOST_GENERIC_SOURCES ${SRC}/kernel/acpi_tables.cpp)

# scripts/plot-memory on a synthetic log with two `mem` dumps (a PNG must appear), and on a log
# without any (it must refuse with status 1).
add_test(NAME script:plot-memory
  COMMAND sh -c "set -e; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT
    for used in 160 2048; do
      printf 'aethel> mem\\r\\nMana Pool frames (KiB): 257000 managed, %s used (peak 2048), 256000 free\\r\\n' $used
      printf 'frames buddyinfo (order k = 4 KiB << k) and fragmentation index (thousandths;\\r\\n'
      printf '%s\\r\\n' '-1000: a block of that order is free, near 1000: free memory too fragmented):'
      printf '  order        0     1     2\\r\\n  free         3     0    61\\r\\n  frag     -1000  -1000 -1000\\r\\n'
    done > \"$d/mem.log\"
    ${CMAKE_SOURCE_DIR}/scripts/plot-memory \"$d/mem.log\" -o \"$d/mem.png\" | grep -q '2 sample(s), 3 orders'
    head -c 8 \"$d/mem.png\" | od -An -c | grep -q 'P   N   G'
    echo 'no dumps here' > \"$d/empty.log\"
    if ${CMAKE_SOURCE_DIR}/scripts/plot-memory \"$d/empty.log\" -o \"$d/e.png\" 2>\"$d/err\"; then exit 1; fi
    grep -q 'no .mem. output' \"$d/err\"; test ! -e \"$d/e.png\"")
set_tests_properties(script:plot-memory PROPERTIES LABELS script TIMEOUT 30)

# The whole shell scenario under OVMF too (slower boot): only in `make test-full`.
add_test(NAME qemu:shell-uefi
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-shell-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos-test-shell.iso
          --firmware uefi --log ${CMAKE_BINARY_DIR}/logs/shell-uefi.log --timeout 150)
set_tests_properties(qemu:shell-uefi PROPERTIES LABELS "qemu;full" TIMEOUT 170)
