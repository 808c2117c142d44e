# Finds TensorFlow's C/C++ headers and shared libraries inside the installed `tensorflow` wheel by asking
# the Python interpreter (tf.sysconfig is the documented source for these paths and flags).
#
# Defines the imported targets
#   TensorFlow::c_api  headers + libtensorflow_cc.so.2 (exports the TF_* C API)
#   TensorFlow::cc     TensorFlow::c_api + libtensorflow_framework.so.2 (core, protobuf runtime, protos)
# and TensorFlowWheel_INCLUDE_DIR, TensorFlowWheel_LIBRARY_DIR, TensorFlowWheel_VERSION.
if(TARGET TensorFlow::cc)
  set(TensorFlowWheel_FOUND TRUE)
  return()
endif()

if(NOT TensorFlowWheel_PYTHON)
  if(Python_EXECUTABLE)
    set(TensorFlowWheel_PYTHON "${Python_EXECUTABLE}")
  else()
    find_program(TensorFlowWheel_PYTHON NAMES python3 python)
  endif()
endif()

if(NOT TensorFlowWheel_INCLUDE_DIR OR NOT TensorFlowWheel_LIBRARY_DIR)
  # tf.sysconfig imports only tensorflow's small sysconfig module, not the whole framework.
  execute_process(
    COMMAND "${TensorFlowWheel_PYTHON}" -c
      "import importlib.util, os; s = importlib.util.find_spec('tensorflow'); d = os.path.dirname(s.origin); import importlib.metadata as m; print(d); print(m.version('tensorflow'))"
    OUTPUT_VARIABLE _tf_out RESULT_VARIABLE _tf_rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_tf_rc EQUAL 0)
    string(REPLACE "\n" ";" _tf_lines "${_tf_out}")
    list(GET _tf_lines 0 _tf_dir)
    list(GET _tf_lines 1 _tf_version)
    set(TensorFlowWheel_INCLUDE_DIR "${_tf_dir}/include" CACHE PATH "TensorFlow wheel headers")
    set(TensorFlowWheel_LIBRARY_DIR "${_tf_dir}" CACHE PATH "TensorFlow wheel libraries")
    set(TensorFlowWheel_VERSION "${_tf_version}" CACHE STRING "TensorFlow wheel version")
  endif()
endif()

find_library(TensorFlowWheel_CC_LIBRARY NAMES libtensorflow_cc.so.2
  PATHS "${TensorFlowWheel_LIBRARY_DIR}" NO_DEFAULT_PATH)
find_library(TensorFlowWheel_FRAMEWORK_LIBRARY NAMES libtensorflow_framework.so.2
  PATHS "${TensorFlowWheel_LIBRARY_DIR}" NO_DEFAULT_PATH)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(TensorFlowWheel
  REQUIRED_VARS TensorFlowWheel_INCLUDE_DIR TensorFlowWheel_CC_LIBRARY TensorFlowWheel_FRAMEWORK_LIBRARY
  VERSION_VAR TensorFlowWheel_VERSION)

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
  # The flags tf.sysconfig.get_compile_flags() reports; the ABI flag must match the wheel's.
  set_target_properties(TensorFlow::cc PROPERTIES
    INTERFACE_LINK_LIBRARIES "TensorFlow::c_api;TensorFlow::framework"
    INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=1;EIGEN_MAX_ALIGN_BYTES=64")
  set_property(TARGET TensorFlow::c_api PROPERTY
    INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=1")
endif()
