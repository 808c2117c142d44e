// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// hubcore._core: the thin pybind11 layer over libhubcore. The Pythonic API lives in python/hubcore.
#include <pybind11/pybind11.h>

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
      PyErr_SetObject(cls.ptr(), py::str(e.status().message()).ptr());
    }
  });

  hubcore::python::RegisterSpecBindings(m);
  hubcore::python::RegisterRewriteBindings(m);
  hubcore::python::RegisterFunctionFormBindings(m);
  hubcore::python::RegisterRuntimeBindings(m);
}
