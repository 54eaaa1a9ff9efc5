# One style: every C++ file under src/, test/ and bench/ is as clang-format-14 writes it with the
# project's .clang-format (scripts/check-format.sh; `scripts/check-format.sh --fix` rewrites them).
add_test(NAME check:format COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-format.sh)
set_tests_properties(check:format PROPERTIES LABELS check TIMEOUT 120)
