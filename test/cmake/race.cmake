# Race hunting (label `race`). TCG delivers interrupts only between translation blocks, so a
# race between two instructions of one block never shows in an ordinary run. With -singlestep
# every instruction is a block of its own, and with -icount the timer fires after a fixed count
# of instructions: each shift lands the tick on other instructions, and the same ones on every
# run, so a failure reproduces. Measured wall times: docs/testing.md.
#
# `make test` runs one cell: the Loom's and the locks' suites (`ktest=s*`: sched, sched_cost,
# sched_trace, stats, sync; about 30 s). Suites are named after their files (check:ktest-suites),
# so a new src/kernel/ktests/s*_ktest.cpp joins this cell. `make test-full` adds the whole ktest
# suite at three shifts and the 60 s stress run at two (a 60 s run single-stepped takes about 10
# minutes).
add_test(NAME qemu:race-ktest-loom-shift4
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-boot-test.sh --elf ${CMAKE_BINARY_DIR}/kernel/aethelos-test.elf
          --cmdline "ktest=s* log=info" --firmware bios --singlestep --shift 4
          --log ${CMAKE_BINARY_DIR}/logs/race-ktest-loom-shift4.log --timeout 300)
set_tests_properties(qemu:race-ktest-loom-shift4 PROPERTIES LABELS "qemu;race" TIMEOUT 330)

foreach(shift 3 5 7)
  add_test(NAME qemu:race-ktest-shift${shift}
    COMMAND ${QEMU_TEST} --iso ${CMAKE_BINARY_DIR}/aethelos-test.iso --firmware bios
            --singlestep --shift ${shift} --log ${CMAKE_BINARY_DIR}/logs/race-ktest-shift${shift}.log --timeout 2400)
  set_tests_properties(qemu:race-ktest-shift${shift} PROPERTIES LABELS "qemu;race;full" TIMEOUT 2460)
endforeach()
# The stress load needs a guest of at least ~30 million instructions per second (shift <= 5):
# slower, its Idle churners make no progress within the 5 s window.
foreach(shift 4 5)
  add_test(NAME qemu:race-stress-shift${shift}
    COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-stress.sh --elf ${CMAKE_BINARY_DIR}/kernel/aethelos-test.elf
            --seconds 60 --firmware bios --singlestep --shift ${shift}
            --log ${CMAKE_BINARY_DIR}/logs/race-stress-shift${shift}.log --timeout 3000)
  set_tests_properties(qemu:race-stress-shift${shift} PROPERTIES LABELS "qemu;race;full" TIMEOUT 3060)
endforeach()
