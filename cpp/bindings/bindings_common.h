// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Shared by the binding files: how a hubcore::Status becomes a Python exception, and the
// registration entry points of each concept's binding file.
#ifndef HUBCORE_BINDINGS_BINDINGS_COMMON_H_
#define HUBCORE_BINDINGS_BINDINGS_COMMON_H_

#include <pybind11/pybind11.h>

#include <stdexcept>

#include "hubcore/status.h"

namespace hubcore::python {

// Carries a non-OK Status to the translator registered in core_module.cc, which raises the
// matching class from hubcore.errors (see that module for the code -> exception table).
class StatusError : public std::runtime_error {
 public:
  explicit StatusError(Status status)
      : std::runtime_error(status.message()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

inline void ThrowIfError(const Status& status) {
  if (!status.ok()) throw StatusError(status);
}

// Runs `work` (returning a Status) with the GIL released, so other Python threads go on while
// TensorFlow works, then raises the mapped exception if it failed. `work` must not touch
// Python objects.
template <typename Work>
void RunWithoutGil(Work&& work) {
  Status status;
  {
    pybind11::gil_scoped_release release;
    status = work();
  }
  ThrowIfError(status);
}

void RegisterSpecBindings(pybind11::module_& m);
void RegisterRewriteBindings(pybind11::module_& m);
void RegisterFunctionFormBindings(pybind11::module_& m);
void RegisterRuntimeBindings(pybind11::module_& m);

}  // namespace hubcore::python

#endif  // HUBCORE_BINDINGS_BINDINGS_COMMON_H_
