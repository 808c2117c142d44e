// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target over hubcore::ModuleSpec::Load and LoadedModule::Load (docs/security.md,
// "Fuzzing"). Inputs are bench/fuzz.py's: byte 0 picks a seed module of tests/data, byte 1 the
// file of it to replace, the rest is that file's content; so both fuzzers share a corpus.
// Any Status is fine here (it is the API's answer); libFuzzer reports crashes, aborts and hangs.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "hubcore/module_spec.h"
#include "hubcore/runtime.h"

namespace {

namespace fs = std::filesystem;

constexpr const char* kSeeds[] = {"tiny", "text_table", "sparse_in", "ragged_in", "partitioned"};
constexpr const char* kTargets[] = {"saved_model.pb", "tfhub_module.pb",
                                    "variables/variables.index",
                                    "variables/variables.data-00000-of-00001"};

fs::path g_data;     // tests/data
fs::path g_workdir;  // a private temporary directory

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const char* data = std::getenv("HUBCORE_FUZZ_DATA");
  g_data = data ? data : "tests/data";
  if (!fs::is_directory(g_data / kSeeds[0])) {
    fprintf(stderr, "module_fuzzer: set HUBCORE_FUZZ_DATA to hubcore's tests/data\n");
    std::abort();
  }
  std::string dir = (fs::temp_directory_path() / "hubcore-cc-fuzz-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) std::abort();
  g_workdir = dir;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const char* seed = kSeeds[data[0] % std::size(kSeeds)];
  const char* target = kTargets[data[1] % std::size(kTargets)];
  const fs::path module = g_workdir / "module";
  fs::remove_all(module);
  fs::copy(g_data / seed, module, fs::copy_options::recursive);
  fs::create_directories((module / target).parent_path());
  {
    std::ofstream out(module / target, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 2), static_cast<std::streamsize>(size - 2));
  }
  std::unique_ptr<hubcore::ModuleSpec> spec;
  if (!hubcore::ModuleSpec::Load(module.string(), &spec).ok()) return 0;
  hubcore::LoadOptions options;
  options.intra_op_threads = 1;
  options.inter_op_threads = 1;
  std::unique_ptr<hubcore::LoadedModule> loaded;
  (void)hubcore::LoadedModule::Load(*spec, options, &loaded);
  return 0;
}
