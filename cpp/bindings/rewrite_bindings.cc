// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
#include "bindings_common.h"

namespace hubcore::python {
void RegisterRewriteBindings(pybind11::module_& m) {}
}  // namespace hubcore::python
