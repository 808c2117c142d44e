// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// GoogleTest main: like gtest_main, plus the fixtures directory (see test_util.h).
#include <cstdlib>
#include <string>

#include "test_util.h"

namespace hubcore_test {
namespace {
std::string data_dir = HUBCORE_TEST_DATA_DIR;
}  // namespace

const std::string& DataDir() { return data_dir; }

}  // namespace hubcore_test

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);  // Removes the --gtest_* flags it knows.
  if (const char* env = std::getenv("HUBCORE_TEST_DATA")) hubcore_test::data_dir = env;
  if (argc > 1) hubcore_test::data_dir = argv[1];
  return RUN_ALL_TESTS();
}
