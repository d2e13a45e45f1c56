# Cross-compile for macOS on aarch64 with zig cc (see zig-macos.cmake), e.g.
#   cmake -S . -B build-macos -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/zig-aarch64-macos.cmake \
#         -DBACKEND=kqueue -DZIG=/path/to/zig
set(CMAKE_SYSTEM_PROCESSOR arm64)
set(HP_ZIG_TARGET aarch64-macos)
include(${CMAKE_CURRENT_LIST_DIR}/zig-macos.cmake)
