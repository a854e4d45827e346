# Installs the already-built tree into a scratch prefix, then configures,
# builds and runs separate projects that use find_package(libactor): one
# that uses only libactor::core with OpenSSL and Boost hidden, and one that
# uses libactor::net. Also checks that the installed targets carry no build
# options of this project (warnings as errors, sanitizers).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "install failed: ${rc}")
endif()

file(GLOB target_files ${WORK_DIR}/prefix/lib*/cmake/libactor/*.cmake)
foreach(f ${target_files})
  file(READ ${f} text)
  foreach(bad "-Werror" "libactor_options" "fsanitize" "Boost::")
    string(FIND "${text}" "${bad}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "the installed package mentions ${bad}: ${f}")
    endif()
  endforeach()
endforeach()

function(consume name net_flag)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install_consumer/project
                          -B ${WORK_DIR}/${name} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                          -DCMAKE_CXX_COMPILER=${CXX} -DCONSUMER_NET=${net_flag} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "configuring the ${name} consumer failed: ${rc}\n${out}\n${err}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/${name}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "building the ${name} consumer failed: ${rc}\n${out}\n${err}")
  endif()
endfunction()

function(check program expect)
  execute_process(COMMAND ${program} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(rc OR NOT out MATCHES "${expect}")
    message(FATAL_ERROR "${program} failed (${rc}): ${out}")
  endif()
  message(STATUS "${out}")
endfunction()

consume(core OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON)
check(${WORK_DIR}/core/consumer "consumer: 42")
consume(net ON)
check(${WORK_DIR}/net/consumer "consumer: 42")
check(${WORK_DIR}/net/consumer_net "consumer_net: 42")
