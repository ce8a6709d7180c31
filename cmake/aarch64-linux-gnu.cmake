# Cross-compiling for aarch64 Linux with Debian's g++-aarch64-linux-gnu (the portable build: the
# scalar kernel table only). Test binaries run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR),
# so gtest_discover_tests and ctest work as on the host. Used by scripts/cross-aarch64.sh:
#   cmake -S . -B build/aarch64 --toolchain cmake/aarch64-linux-gnu.cmake -DOHM_HUB=OFF ...
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Libraries from the target's tree only; headers and CMake package files may be the host's
# architecture-independent ones (nlohmann-json3-dev and libcli11-dev are header-only).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# pkg-config must not hand the host's x86-64 libraries to the cross linker.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")

find_program(OHM_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(OHM_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${OHM_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
endif()
