# Resolve BACKEND (auto|epoll|kqueue|poll) to HP_BACKEND, checking that the
# platform has it. On Linux, BACKEND=kqueue builds the kqueue driver against
# the test-only emulation in tests/support/kqueue-emu (HP_KQUEUE_EMU).
include(CheckSymbolExists)

check_symbol_exists(epoll_create1 "sys/epoll.h" HP_HAVE_EPOLL)
check_symbol_exists(kqueue "sys/types.h;sys/event.h;sys/time.h" HP_HAVE_KQUEUE)
check_symbol_exists(poll "poll.h" HP_HAVE_POLL)

set(HP_KQUEUE_EMU OFF)
set(_hp_usable auto)
if(HP_HAVE_EPOLL)
  list(APPEND _hp_usable epoll)
endif()
if(HP_HAVE_KQUEUE OR CMAKE_SYSTEM_NAME STREQUAL "Linux")
  list(APPEND _hp_usable kqueue)
endif()
if(HP_HAVE_POLL)
  list(APPEND _hp_usable poll)
endif()

if(NOT BACKEND IN_LIST _hp_usable)
  string(REPLACE ";" ", " _hp_list "${_hp_usable}")
  message(FATAL_ERROR "BACKEND='${BACKEND}' is not usable on this platform; choose one of: ${_hp_list}")
endif()

if(BACKEND STREQUAL "auto")
  if(HP_HAVE_EPOLL)
    set(HP_BACKEND epoll)
  elseif(HP_HAVE_KQUEUE)
    set(HP_BACKEND kqueue)
  else()
    set(HP_BACKEND poll)
  endif()
else()
  set(HP_BACKEND ${BACKEND})
endif()

if(HP_BACKEND STREQUAL "kqueue" AND NOT HP_HAVE_KQUEUE)
  set(HP_KQUEUE_EMU ON)
  if(BUILD_SHARED_LIBS)
    message(FATAL_ERROR "BACKEND=kqueue on ${CMAKE_SYSTEM_NAME} uses the test-only kqueue emulation, "
      "which needs a static build (BUILD_SHARED_LIBS=OFF)")
  endif()
  message(STATUS "hellepoll: BACKEND=kqueue on ${CMAKE_SYSTEM_NAME}: using the test-only kqueue emulation")
endif()
message(STATUS "hellepoll: backend ${HP_BACKEND}")
