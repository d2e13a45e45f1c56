# hp_target_warnings(target): the one warning set for everything we build.
function(hp_target_warnings target)
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE
      -Wall -Wextra -Wpedantic
      -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
      -Wpointer-arith -Wcast-qual -Wwrite-strings -Wvla -Wundef
      -Wformat=2 -Wimplicit-fallthrough -Wconversion -Wsign-conversion
      -Werror=implicit-function-declaration -Werror=incompatible-pointer-types
      -Werror=return-type -fno-common
      $<$<C_COMPILER_ID:GNU>:-Wduplicated-cond -Wlogical-op>
      $<$<BOOL:${HP_WERROR}>:-Werror>)
  endif()
  hp_target_sanitize(${target})
endfunction()

# hp_target_sanitize(target): HP_SANITIZE flags only (for code that is not ours to warn about).
function(hp_target_sanitize target)
  if(HP_SANITIZE AND CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -fsanitize=${HP_SANITIZE} -fno-omit-frame-pointer
      -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${HP_SANITIZE})
  endif()
endfunction()
