// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
// C++ tests of the runtime (hubcore/runtime.h) without Python.
#include "test_harness.h"
