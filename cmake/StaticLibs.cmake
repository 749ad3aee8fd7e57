# PCRE2 (8-bit) and utf8proc, linked statically into the addon and the tokenizer's tests.
# scripts/fetch-static-libs.mjs decides where they come from: the system when the compiler finds them, else the
# Debian packages unpacked into the build cache (no root needed). Defines TOKMETER_STATIC_LIBS_INCLUDE and
# TOKMETER_STATIC_LIBS_LIB (empty when the system's copies are used) and TOKMETER_STATIC_LIBS (the link items).
if(NOT DEFINED TOKMETER_STATIC_LIBS)
  find_program(NODE_EXECUTABLE node REQUIRED)
  get_filename_component(_tokmeter_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
  execute_process(
    COMMAND ${NODE_EXECUTABLE} ${_tokmeter_root}/scripts/fetch-static-libs.mjs --print-include
    OUTPUT_VARIABLE TOKMETER_STATIC_LIBS_INCLUDE RESULT_VARIABLE _inc_result)
  if(NOT _inc_result EQUAL 0)
    message(FATAL_ERROR "could not obtain PCRE2 and utf8proc (see the message above)")
  endif()
  execute_process(
    COMMAND ${NODE_EXECUTABLE} ${_tokmeter_root}/scripts/fetch-static-libs.mjs --print-lib
    OUTPUT_VARIABLE TOKMETER_STATIC_LIBS_LIB RESULT_VARIABLE _lib_result)
  if(NOT _lib_result EQUAL 0)
    message(FATAL_ERROR "could not obtain PCRE2 and utf8proc (see the message above)")
  endif()
  if(TOKMETER_STATIC_LIBS_LIB)
    set(TOKMETER_STATIC_LIBS ${TOKMETER_STATIC_LIBS_LIB}/libpcre2-8.a ${TOKMETER_STATIC_LIBS_LIB}/libutf8proc.a)
    message(STATUS "PCRE2 and utf8proc: ${TOKMETER_STATIC_LIBS_LIB}")
  else()
    set(TOKMETER_STATIC_LIBS -l:libpcre2-8.a -l:libutf8proc.a)
    message(STATUS "PCRE2 and utf8proc: the system's")
  endif()
endif()
