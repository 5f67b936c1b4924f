# peers.cmake - where the benchmarks' peer allocators and collectors live,
# and one function that declares a benchmark program.
#
# Included by every bench/<suite>/CMakeLists.txt that needs it (include_guard
# makes that cheap).  A peer whose library is missing is skipped with a
# message: the suite driver then reports that implementation as missing
# instead of failing the build.  scripts/bootstrap.sh installs them all.
include_guard(GLOBAL)

# Cache variables: include_guard(GLOBAL) runs this file once, and plain
# variables would then exist only in the first includer's scope.
set(RCGC_BENCH_OUT ${CMAKE_BINARY_DIR}/bench CACHE INTERNAL "benchmark binaries")
set(RCGC_BENCH_COMMON ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "bench/common")

# Debian's packages first: pyenv and similar managers put other Pythons on
# PATH, and CMake would otherwise pick their headers.
find_path(RCGC_BENCH_PYTHON_INC Python.h
  PATHS /usr/include/python3.11 NO_DEFAULT_PATH)
find_path(RCGC_BENCH_PYTHON_INC Python.h PATH_SUFFIXES python3.11)
find_library(RCGC_BENCH_PYTHON_LIB python3.11
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE} NO_DEFAULT_PATH)
find_library(RCGC_BENCH_PYTHON_LIB python3.11)

find_path(RCGC_BENCH_MIMALLOC_INC mimalloc.h)
find_library(RCGC_BENCH_MIMALLOC_LIB mimalloc)
find_path(RCGC_BENCH_JEMALLOC_INC jemalloc/jemalloc.h)
find_library(RCGC_BENCH_JEMALLOC_LIB jemalloc)
find_path(RCGC_BENCH_TCMALLOC_INC gperftools/malloc_extension_c.h)
find_library(RCGC_BENCH_TCMALLOC_LIB tcmalloc_minimal)
find_path(RCGC_BENCH_BOEHM_INC gc.h PATH_SUFFIXES gc)
find_library(RCGC_BENCH_BOEHM_LIB gc)

# rcgc_bench_program(NAME SOURCE
#                    [DEFINES d...] [INCLUDES dir...] [LIBS lib...] [RCGC])
# Builds ${CMAKE_BINARY_DIR}/bench/NAME from SOURCE with the project's
# warnings.  INCLUDES are system include directories (third-party headers
# are not held to our warning flags).  RCGC links the static library.
function(rcgc_bench_program name source)
  cmake_parse_arguments(P "RCGC" "" "DEFINES;INCLUDES;LIBS" ${ARGN})
  add_executable(${name} ${source})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${RCGC_BENCH_OUT})
  target_include_directories(${name} PRIVATE ${RCGC_BENCH_COMMON})
  if(P_INCLUDES)
    target_include_directories(${name} SYSTEM PRIVATE ${P_INCLUDES})
  endif()
  target_compile_options(${name} PRIVATE ${RCGC_WARNINGS})
  target_compile_definitions(${name} PRIVATE ${P_DEFINES})
  if(P_RCGC)
    target_link_libraries(${name} PRIVATE rcgc_static)
  endif()
  target_link_libraries(${name} PRIVATE ${P_LIBS})
endfunction()

# True (in the caller's variable `out`) when every listed variable is set
# to something found; prints which peer is skipped otherwise.
function(rcgc_bench_have out what)
  set(ok TRUE)
  foreach(v ${ARGN})
    if(NOT ${v})
      set(ok FALSE)
    endif()
  endforeach()
  if(NOT ok)
    message(STATUS "bench: ${what} not found; its benchmarks are skipped "
                   "(scripts/bootstrap.sh installs it)")
  endif()
  set(${out} ${ok} PARENT_SCOPE)
endfunction()
