// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// A minimal test harness for the C++ tests (no third-party test framework to build): each test is a
// function registered with HUBCORE_TEST; EXPECT_* record failures; main() prints the summary line
// "N passed, M failed" that CI reads.
#ifndef HUBCORE_TESTS_TEST_HARNESS_H_
#define HUBCORE_TESTS_TEST_HARNESS_H_

#include <functional>
#include <iostream>
#include <string>
#include <vector>

namespace hubcore_test {

struct TestCase {
  std::string name;
  std::function<void()> body;
};

std::vector<TestCase>& Registry();
// The fixtures directory (tests/data), passed as argv[1].
const std::string& DataDir();
void RecordFailure(const char* file, int line, const std::string& what);

struct Registrar {
  Registrar(const char* name, std::function<void()> body) {
    Registry().push_back({name, std::move(body)});
  }
};

}  // namespace hubcore_test

#define HUBCORE_TEST(name)                                        \
  static void name();                                             \
  static ::hubcore_test::Registrar name##_registrar(#name, name); \
  static void name()

#define EXPECT_TRUE(cond)                                                  \
  do {                                                                     \
    if (!(cond)) ::hubcore_test::RecordFailure(__FILE__, __LINE__, #cond); \
  } while (0)

#define EXPECT_EQ(a, b)                                                                 \
  do {                                                                                  \
    if (!((a) == (b))) ::hubcore_test::RecordFailure(__FILE__, __LINE__, #a " == " #b); \
  } while (0)

// Fails the test (and returns from it) when a hubcore::Status is not OK.
#define ASSERT_OK(expr)                                                              \
  do {                                                                               \
    ::hubcore::Status _s = (expr);                                                   \
    if (!_s.ok()) {                                                                  \
      ::hubcore_test::RecordFailure(__FILE__, __LINE__, #expr ": " + _s.ToString()); \
      return;                                                                        \
    }                                                                                \
  } while (0)

#endif  // HUBCORE_TESTS_TEST_HARNESS_H_
