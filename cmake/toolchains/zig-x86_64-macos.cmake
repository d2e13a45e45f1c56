# Cross-compile for macOS on x86_64 with zig cc (see zig-macos.cmake), e.g.
#   cmake -S . -B build-macos -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/zig-x86_64-macos.cmake \
#         -DBACKEND=kqueue -DZIG=/path/to/zig
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(HP_ZIG_TARGET x86_64-macos)
include(${CMAKE_CURRENT_LIST_DIR}/zig-macos.cmake)
