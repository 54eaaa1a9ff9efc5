# CMake toolchain file for the Heartwood: the cached x86_64-elf cross tools.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

if(NOT AETHELOS_TOOLCHAIN_PREFIX)
  message(FATAL_ERROR "Set AETHELOS_TOOLCHAIN_PREFIX to the cross toolchain (the superbuild does this)")
endif()
set(_bin ${AETHELOS_TOOLCHAIN_PREFIX}/bin/x86_64-elf-)
set(CMAKE_C_COMPILER ${_bin}gcc)
set(CMAKE_CXX_COMPILER ${_bin}g++)
set(CMAKE_ASM_COMPILER ${_bin}gcc)
set(CMAKE_AR ${_bin}ar)
set(CMAKE_RANLIB ${_bin}ranlib)
set(CMAKE_OBJCOPY ${_bin}objcopy)
set(CMAKE_NM ${_bin}nm)
set(CMAKE_READELF ${_bin}readelf)

# A freestanding target cannot link a test program; check compilers by compiling only.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH ${AETHELOS_TOOLCHAIN_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Pass the prefix on to try_compile projects.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES AETHELOS_TOOLCHAIN_PREFIX)
