// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// hubcore._core: the thin pybind11 layer over libhubcore. The Pythonic API lives in python/hubcore.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings_common.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "Native core of hubcore (private; use the hubcore package).";
  m.attr("__version__") = HUBCORE_VERSION;

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const hubcore::python::StatusError& e) {
      // hubcore.errors is pure Python and never imports _core, so this cannot recurse.
      py::object errors = py::module_::import("hubcore.errors");
      py::object cls =
          errors.attr("error_for_status_code")(hubcore::StatusCodeName(e.status().code()));
      // Messages quote module content (node names, attrs), which need not be UTF-8.
      const std::string message(e.status().message());
      py::object text = py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(
          message.data(), static_cast<Py_ssize_t>(message.size()), "backslashreplace"));
      if (!text) return;  // MemoryError, already set
      PyErr_SetObject(cls.ptr(), text.ptr());
    }
  });

  hubcore::python::RegisterSpecBindings(m);
  hubcore::python::RegisterRewriteBindings(m);
  hubcore::python::RegisterFunctionFormBindings(m);
  hubcore::python::RegisterRuntimeBindings(m);
}
