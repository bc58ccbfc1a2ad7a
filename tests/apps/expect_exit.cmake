# Runs BIN with ARGS (a ;-list) and fails unless its exit code is CODE; prints its output so that
# PASS_REGULAR_EXPRESSION can check the message.
separate_arguments(args UNIX_COMMAND "${ARGS}")
string(REPLACE ";" " " _shown "${ARGS}")
execute_process(COMMAND ${BIN} ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL CODE)
  message(FATAL_ERROR "loradrop ${_shown}: exit code ${rc}, expected ${CODE}")
endif()
