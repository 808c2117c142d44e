// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Shared by the GoogleTest-based C++ tests: the fixtures directory and ASSERT_OK for Status.
#ifndef HUBCORE_TESTS_TEST_UTIL_H_
#define HUBCORE_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <string>

#include "hubcore/status.h"

namespace hubcore_test {

// The fixtures directory (tests/data): argv[1] after GoogleTest's flags, else $HUBCORE_TEST_DATA,
// else the source tree's tests/data.
const std::string& DataDir();

}  // namespace hubcore_test

// Fails the test (and returns from it) when a hubcore::Status is not OK, printing the status.
#define ASSERT_OK(expr)                                                  \
  do {                                                                   \
    const ::hubcore::Status _hubcore_s = (expr);                         \
    ASSERT_TRUE(_hubcore_s.ok()) << #expr ": " << _hubcore_s.ToString(); \
  } while (0)

#define EXPECT_OK(expr)                                                  \
  do {                                                                   \
    const ::hubcore::Status _hubcore_s = (expr);                         \
    EXPECT_TRUE(_hubcore_s.ok()) << #expr ": " << _hubcore_s.ToString(); \
  } while (0)

#endif  // HUBCORE_TESTS_TEST_UTIL_H_
