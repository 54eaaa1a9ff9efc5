# The layer check also runs as a test, so that `ctest -L check` shows it beside the others; the
# kernel build runs it first and stops on a wrong-way include (src/CMakeLists.txt).
add_test(NAME check:layers COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-layers.py --root ${CMAKE_SOURCE_DIR}/src)
set_tests_properties(check:layers PROPERTIES LABELS check)
