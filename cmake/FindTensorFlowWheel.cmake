# Finds TensorFlow's C/C++ headers and shared libraries inside an installed `tensorflow` wheel by
# asking a Python interpreter where the package is (importlib finds it without importing it).
#
# The interpreter: TensorFlowWheel_PYTHON if set, else Python_EXECUTABLE / Python3_EXECUTABLE, else
# `python3` (or `python`) on PATH. When it has no tensorflow, the error names the interpreter asked.
#
# Defines the imported targets
#   TensorFlow::c_api  headers + libtensorflow_cc.so.2 (exports the TF_* C API)
#   TensorFlow::cc     TensorFlow::c_api + libtensorflow_framework.so.2 (core, protobuf runtime, protos)
# and TensorFlowWheel_INCLUDE_DIR, TensorFlowWheel_LIBRARY_DIR, TensorFlowWheel_VERSION,
# TensorFlowWheel_PYTHON.
if(TARGET TensorFlow::cc)
  set(TensorFlowWheel_FOUND TRUE)
  return()
endif()

if(NOT TensorFlowWheel_PYTHON)
  if(Python_EXECUTABLE)
    set(TensorFlowWheel_PYTHON "${Python_EXECUTABLE}")
  elseif(Python3_EXECUTABLE)
    set(TensorFlowWheel_PYTHON "${Python3_EXECUTABLE}")
  else()
    find_program(TensorFlowWheel_PYTHON NAMES python3 python)
  endif()
endif()

set(_tf_failure "")
if(NOT TensorFlowWheel_INCLUDE_DIR OR NOT TensorFlowWheel_LIBRARY_DIR)
  if(NOT TensorFlowWheel_PYTHON)
    set(_tf_failure "no Python interpreter found (python3 is not on PATH); set TensorFlowWheel_PYTHON")
  else()
    execute_process(
      COMMAND "${TensorFlowWheel_PYTHON}" -c
        "import importlib.metadata, importlib.util, os; s = importlib.util.find_spec('tensorflow'); assert s and s.origin, 'no tensorflow package'; print(os.path.dirname(s.origin)); print(importlib.metadata.version('tensorflow'))"
      OUTPUT_VARIABLE _tf_out ERROR_VARIABLE _tf_err RESULT_VARIABLE _tf_rc
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
    if(_tf_rc EQUAL 0)
      string(REPLACE "\n" ";" _tf_lines "${_tf_out}")
      list(GET _tf_lines 0 _tf_dir)
      list(GET _tf_lines 1 _tf_version)
      set(TensorFlowWheel_INCLUDE_DIR "${_tf_dir}/include" CACHE PATH "TensorFlow wheel headers")
      set(TensorFlowWheel_LIBRARY_DIR "${_tf_dir}" CACHE PATH "TensorFlow wheel libraries")
      set(TensorFlowWheel_VERSION "${_tf_version}" CACHE STRING "TensorFlow wheel version")
    else()
      string(REGEX MATCH "[^\n]*$" _tf_err_last "${_tf_err}")
      string(CONCAT _tf_failure "asked ${TensorFlowWheel_PYTHON} where the tensorflow wheel is, "
        "and it failed (${_tf_err_last}${_tf_out}). Install tensorflow for that interpreter, or "
        "set TensorFlowWheel_PYTHON (or Python_EXECUTABLE) to the python that has it")
    endif()
  endif()
endif()

find_library(TensorFlowWheel_CC_LIBRARY NAMES libtensorflow_cc.so.2
  PATHS "${TensorFlowWheel_LIBRARY_DIR}" NO_DEFAULT_PATH)
find_library(TensorFlowWheel_FRAMEWORK_LIBRARY NAMES libtensorflow_framework.so.2
  PATHS "${TensorFlowWheel_LIBRARY_DIR}" NO_DEFAULT_PATH)

include(FindPackageHandleStandardArgs)
if(NOT _tf_failure AND NOT (TensorFlowWheel_CC_LIBRARY AND TensorFlowWheel_FRAMEWORK_LIBRARY))
  string(CONCAT _tf_failure "no libtensorflow_cc.so.2 / libtensorflow_framework.so.2 in "
    "${TensorFlowWheel_LIBRARY_DIR} (asked ${TensorFlowWheel_PYTHON})")
endif()
find_package_handle_standard_args(TensorFlowWheel
  REQUIRED_VARS TensorFlowWheel_INCLUDE_DIR TensorFlowWheel_CC_LIBRARY TensorFlowWheel_FRAMEWORK_LIBRARY
  VERSION_VAR TensorFlowWheel_VERSION
  REASON_FAILURE_MESSAGE "${_tf_failure}")

if(TensorFlowWheel_FOUND)
  add_library(TensorFlow::c_api SHARED IMPORTED)
  set_target_properties(TensorFlow::c_api PROPERTIES
    IMPORTED_LOCATION "${TensorFlowWheel_CC_LIBRARY}"
    IMPORTED_NO_SONAME FALSE
    INTERFACE_INCLUDE_DIRECTORIES "${TensorFlowWheel_INCLUDE_DIR}")
  add_library(TensorFlow::framework SHARED IMPORTED)
  set_target_properties(TensorFlow::framework PROPERTIES
    IMPORTED_LOCATION "${TensorFlowWheel_FRAMEWORK_LIBRARY}")
  # The TF_Tensor / TF_Status / TF_TString C functions are defined in libtensorflow_framework, so
  # programs using the C API (e.g. with hubcore/runtime.h) link it too.
  set_property(TARGET TensorFlow::c_api APPEND PROPERTY INTERFACE_LINK_LIBRARIES TensorFlow::framework)
  add_library(TensorFlow::cc INTERFACE IMPORTED)
  # The wheel's compile flags (what tf.sysconfig.get_compile_flags() reports, written out so
  # that finding them needs no TensorFlow import); the ABI flag must match the wheel's.
  set_target_properties(TensorFlow::cc PROPERTIES
    INTERFACE_LINK_LIBRARIES "TensorFlow::c_api;TensorFlow::framework"
    INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=1;EIGEN_MAX_ALIGN_BYTES=64")
  set_property(TARGET TensorFlow::c_api PROPERTY
    INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=1")
endif()
