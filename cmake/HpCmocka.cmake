# hp_find_cmocka(): sets HP_CMOCKA to the cmocka target to link tests with,
# or leaves it empty when the tests are not built (HP_BUILD_TESTS=OFF, or
# AUTO without cmocka). HP_BUILD_TESTS=ON without cmocka is a configure error.
# Sets HP_TESTS_BUILT (ON/OFF) for the summary line.
macro(hp_find_cmocka)
  set(HP_CMOCKA "")
  set(HP_TESTS_BUILT OFF)
  if(HP_BUILD_TESTS)  # AUTO and ON are both true strings
    find_package(cmocka CONFIG QUIET)
    if(TARGET cmocka::cmocka)
      set(HP_CMOCKA cmocka::cmocka)
    else()
      find_package(PkgConfig QUIET)
      if(PKG_CONFIG_FOUND)
        pkg_check_modules(CMOCKA QUIET IMPORTED_TARGET cmocka)
      endif()
      if(CMOCKA_FOUND)
        set(HP_CMOCKA PkgConfig::CMOCKA)
      endif()
    endif()
    if(HP_CMOCKA)
      set(HP_TESTS_BUILT ON)
    elseif(HP_BUILD_TESTS STREQUAL "AUTO")
      message(STATUS "cmocka not found: tests are not built (tests/run.sh installs it)")
    else()
      message(FATAL_ERROR "HP_BUILD_TESTS=ON but cmocka was not found "
        "(Debian: apt-get install libcmocka-dev pkg-config)")
    endif()
  endif()
endmacro()
