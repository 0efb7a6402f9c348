# Warnings for our own code only; third-party code never sees -Werror.
# Not -Wnull-dereference: g++ 12 flags every boost::system::result operator-> as a
# potential null dereference after a has_value() check.
add_library(runbookd_warnings INTERFACE)
add_library(runbookd::warnings ALIAS runbookd_warnings)
target_compile_options(runbookd_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wimplicit-fallthrough
  $<$<BOOL:${RUNBOOKD_WERROR}>:-Werror>)

# Sanitizers are a link interface, so every target that links them is instrumented.
add_library(runbookd_sanitize INTERFACE)
if(RUNBOOKD_SANITIZE)
  list(JOIN RUNBOOKD_SANITIZE "," _san)
  target_compile_options(runbookd_sanitize INTERFACE -fsanitize=${_san} -fno-omit-frame-pointer)
  target_link_options(runbookd_sanitize INTERFACE -fsanitize=${_san})
endif()

# runbookd_component(name SOURCES ... PUBLIC_DEPS ... PRIVATE_DEPS ...)
# One static library per daemon/ folder, aliased runbookd::<name>.
function(runbookd_component name)
  cmake_parse_arguments(arg "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(runbookd_${name} STATIC ${arg_SOURCES})
  add_library(runbookd::${name} ALIAS runbookd_${name})
  target_include_directories(runbookd_${name} PUBLIC "${PROJECT_SOURCE_DIR}/daemon")
  target_compile_features(runbookd_${name} PUBLIC cxx_std_20)
  target_link_libraries(runbookd_${name}
    PUBLIC ${arg_PUBLIC_DEPS} runbookd_sanitize
    PRIVATE runbookd::warnings ${arg_PRIVATE_DEPS})
endfunction()
