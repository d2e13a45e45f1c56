# hp_add_module(<name> SOURCES src... [DESCRIPTION text] [LIBS target...]
#               [PC_REQUIRES "pkg ..."] [CONFIG_DEPS "cmake code"])
#
# One protocol module under protocols/<name>: library target hellepoll_<name>
# (alias hellepoll::<name>, export name <name>), public headers in
# protocols/<name>/include/hellepoll/, private sources in src/, a
# hellepoll-<name>.pc, and a component of find_package(hellepoll). LIBS are
# linked PUBLIC (hellepoll::hellepoll always is). PC_REQUIRES goes into the
# .pc file's Requires.private; CONFIG_DEPS is CMake code the installed
# hellepollConfig.cmake runs before loading the targets (e.g. to find an
# imported dependency again).
function(hp_add_module name)
  cmake_parse_arguments(M "" "DESCRIPTION;PC_REQUIRES;CONFIG_DEPS" "SOURCES;LIBS" ${ARGN})
  set(t hellepoll_${name})
  add_library(${t} ${M_SOURCES})
  add_library(hellepoll::${name} ALIAS ${t})
  target_include_directories(${t}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_features(${t} PUBLIC c_std_11)
  target_compile_definitions(${t} PRIVATE _POSIX_C_SOURCE=200809L)
  set_target_properties(${t} PROPERTIES C_EXTENSIONS OFF C_VISIBILITY_PRESET hidden
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MINOR} EXPORT_NAME ${name})
  target_link_libraries(${t} PUBLIC hellepoll::hellepoll ${M_LIBS})
  hp_target_warnings(${t})

  set_property(GLOBAL APPEND PROPERTY HP_MODULE_TARGETS ${t})
  set_property(GLOBAL APPEND PROPERTY HP_MODULE_NAMES ${name})
  set_property(GLOBAL APPEND PROPERTY HP_MODULE_INCLUDES ${CMAKE_CURRENT_SOURCE_DIR}/include)
  if(M_CONFIG_DEPS)
    set_property(GLOBAL APPEND_STRING PROPERTY HP_CONFIG_DEPS "${M_CONFIG_DEPS}\n")
  endif()

  set(HP_MOD_NAME ${name})
  set(HP_MOD_DESCRIPTION "${M_DESCRIPTION}")
  set(HP_MOD_PC_REQUIRES "${M_PC_REQUIRES}")
  configure_file(${PROJECT_SOURCE_DIR}/cmake/hellepoll-module.pc.in
    ${PROJECT_BINARY_DIR}/hellepoll-${name}.pc @ONLY)
endfunction()
