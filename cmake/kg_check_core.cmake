# kg_check_core.cmake -- fails the build when code outside plugin/broker/ reaches the broker's API.
# Run after each core library is built: -DNM=<nm> -DLIB=<archive> -DSRC=<source dir>.
# Only plugin/broker/ may call mosquitto_* (main-thread-only functions of the broker); the core
# library is also linked into tools and unit tests, where no broker exists.
execute_process(COMMAND ${NM} -u ${LIB} OUTPUT_VARIABLE undef RESULT_VARIABLE rc ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kg_check_core: ${NM} -u ${LIB} failed")
endif()
string(REGEX MATCHALL "[ \t]U mosquitto_[A-Za-z0-9_]+" calls "${undef}")
if(calls)
  list(REMOVE_DUPLICATES calls)
  message(FATAL_ERROR "kg_check_core: ${LIB} calls the broker API outside plugin/broker/:${calls}")
endif()
file(GLOB_RECURSE srcs ${SRC}/plugin/*.c ${SRC}/plugin/*.cpp ${SRC}/plugin/*.h)
foreach(f ${srcs})
  if(f MATCHES "/plugin/broker/")
    continue()
  endif()
  file(STRINGS ${f} inc REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](mosquitto|kitgate_internal)")
  if(inc)
    message(FATAL_ERROR "kg_check_core: ${f} includes a broker header (${inc}); only plugin/broker/ may")
  endif()
endforeach()
