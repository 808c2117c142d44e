// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
#include <cstdlib>

#include "test_harness.h"

namespace hubcore_test {
namespace {
std::string data_dir;
int failures_in_current_test = 0;
}  // namespace

std::vector<TestCase>& Registry() {
  static auto* tests = new std::vector<TestCase>();
  return *tests;
}

const std::string& DataDir() { return data_dir; }

void RecordFailure(const char* file, int line, const std::string& what) {
  ++failures_in_current_test;
  std::cerr << file << ":" << line << ": FAILED " << what << "\n";
}

}  // namespace hubcore_test

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " TESTS_DATA_DIR [TEST_NAME_FILTER]\n";
    return 2;
  }
  hubcore_test::data_dir = argv[1];
  const std::string filter = argc > 2 ? argv[2] : "";
  int passed = 0, failed = 0;
  for (const auto& test : hubcore_test::Registry()) {
    if (!filter.empty() && test.name.find(filter) == std::string::npos) continue;
    hubcore_test::failures_in_current_test = 0;
    test.body();
    const bool ok = hubcore_test::failures_in_current_test == 0;
    std::cout << (ok ? "[  OK  ] " : "[FAILED] ") << test.name << "\n";
    (ok ? passed : failed)++;
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
