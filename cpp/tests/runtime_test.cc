// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// C++ tests of the runtime (hubcore/runtime.h) without Python: every fixture call recorded in
// tests/data/golden_cc/*.txt (written by golden_cc/generate.py from the golden .npz files and
// plain TensorFlow) runs through LoadedModule and must reproduce the recorded outputs.
#include "hubcore/runtime.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tensorflow/c/tf_tstring.h"
#include "test_util.h"

using hubcore::LoadedModule;
using hubcore::LoadOptions;
using hubcore::NamedValues;
using hubcore::Status;
using hubcore::StatusCode;
using hubcore::TensorPtr;
using hubcore::Value;
using hubcore_test::DataDir;

namespace fs = std::filesystem;

namespace {

struct GoldenTensor {
  std::string role, key, dtype;
  int component = 0;
  std::vector<int64_t> dims;
  std::vector<std::string> values;  // As written (numbers, or hex strings).
};

std::string Unhex(const std::string& hex) {
  if (hex == "-") return "";
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

bool ReadGolden(const std::string& path, std::vector<GoldenTensor>* tensors) {
  std::ifstream in(path);
  std::string header, values;
  while (std::getline(in, header) && std::getline(in, values)) {
    std::istringstream h(header);
    GoldenTensor t;
    std::string word;
    int rank = 0;
    h >> word >> t.role >> t.key >> t.component >> t.dtype >> rank;
    if (word != "tensor") return false;
    t.dims.resize(rank);
    for (auto& d : t.dims) h >> d;
    std::istringstream v(values);
    for (std::string x; v >> x;) t.values.push_back(x);
    tensors->push_back(std::move(t));
  }
  return !tensors->empty();
}

TF_DataType TypeOf(const std::string& name) {
  if (name == "float32") return TF_FLOAT;
  if (name == "float64") return TF_DOUBLE;
  if (name == "int32") return TF_INT32;
  if (name == "int64") return TF_INT64;
  if (name == "bool") return TF_BOOL;
  return TF_STRING;
}

template <typename T>
void Fill(TF_Tensor* t, const std::vector<std::string>& values) {
  T* data = static_cast<T*>(TF_TensorData(t));
  for (size_t i = 0; i < values.size(); ++i) data[i] = static_cast<T>(std::stod(values[i]));
}

TensorPtr MakeTensor(const GoldenTensor& g) {
  const TF_DataType type = TypeOf(g.dtype);
  const size_t n = g.values.size();
  const size_t bytes = n * (type == TF_STRING ? sizeof(TF_TString) : TF_DataTypeSize(type));
  TensorPtr t(TF_AllocateTensor(type, g.dims.data(), static_cast<int>(g.dims.size()), bytes));
  switch (type) {
    case TF_FLOAT:
      Fill<float>(t.get(), g.values);
      break;
    case TF_DOUBLE:
      Fill<double>(t.get(), g.values);
      break;
    case TF_INT32:
      Fill<int32_t>(t.get(), g.values);
      break;
    case TF_INT64:
      Fill<int64_t>(t.get(), g.values);
      break;
    case TF_BOOL:
      Fill<bool>(t.get(), g.values);
      break;
    default: {
      auto* s = static_cast<TF_TString*>(TF_TensorData(t.get()));
      for (size_t i = 0; i < n; ++i) {
        const std::string v = Unhex(g.values[i]);
        TF_StringInit(&s[i]);
        TF_StringCopy(&s[i], v.data(), v.size());
      }
    }
  }
  return t;
}

// Empty when `t` matches `g` (floats to rtol 1e-5), else what differs.
std::string Compare(const GoldenTensor& g, const TF_Tensor* t) {
  const std::string who = g.key + "[" + std::to_string(g.component) + "]";
  if (t == nullptr) return who + ": missing";
  if (TF_TensorType(t) != TypeOf(g.dtype)) return who + ": dtype differs";
  if (TF_NumDims(t) != static_cast<int>(g.dims.size())) return who + ": rank differs";
  for (int d = 0; d < TF_NumDims(t); ++d) {
    if (TF_Dim(t, d) != g.dims[d]) return who + ": shape differs at dim " + std::to_string(d);
  }
  for (size_t i = 0; i < g.values.size(); ++i) {
    bool same = true;
    switch (TF_TensorType(t)) {
      case TF_FLOAT:
      case TF_DOUBLE: {
        const double got = TF_TensorType(t) == TF_FLOAT
                               ? static_cast<const float*>(TF_TensorData(t))[i]
                               : static_cast<const double*>(TF_TensorData(t))[i];
        const double want = std::stod(g.values[i]);
        same = std::fabs(got - want) <= 1e-6 + 1e-5 * std::fabs(want);
        break;
      }
      case TF_INT32:
        same = static_cast<const int32_t*>(TF_TensorData(t))[i] == std::stoll(g.values[i]);
        break;
      case TF_INT64:
        same = static_cast<const int64_t*>(TF_TensorData(t))[i] == std::stoll(g.values[i]);
        break;
      case TF_STRING: {
        const auto* s = static_cast<const TF_TString*>(TF_TensorData(t)) + i;
        same = std::string(TF_StringGetDataPointer(s), TF_StringGetSize(s)) == Unhex(g.values[i]);
        break;
      }
      default:
        break;
    }
    if (!same) return who + ": element " + std::to_string(i) + " differs";
  }
  return "";
}

// One recorded call: module name, signature, and its tensors.
struct GoldenCall {
  std::string module, signature;
  std::vector<GoldenTensor> tensors;
};

std::vector<GoldenCall> GoldenCalls() {
  std::vector<GoldenCall> calls;
  for (const auto& entry : fs::directory_iterator(DataDir() + "/golden_cc")) {
    if (entry.path().extension() != ".txt") continue;
    const std::string stem = entry.path().stem().string();  // module.signature
    GoldenCall call;
    call.module = stem.substr(0, stem.find('.'));
    call.signature = stem.substr(stem.find('.') + 1);
    if (ReadGolden(entry.path().string(), &call.tensors)) calls.push_back(std::move(call));
  }
  std::sort(calls.begin(), calls.end(), [](const GoldenCall& a, const GoldenCall& b) {
    return a.module + a.signature < b.module + b.signature;
  });
  return calls;
}

NamedValues Inputs(const LoadedModule& m, const GoldenCall& call) {
  std::map<std::string, std::vector<TensorPtr>> parts;
  for (const auto& t : call.tensors) {
    if (t.role != "input") continue;
    auto& v = parts[t.key];
    if (static_cast<int>(v.size()) <= t.component) v.resize(t.component + 1);
    v[t.component] = MakeTensor(t);
  }
  NamedValues inputs;
  const hubcore::SignatureInfo* sig = m.FindSignature(call.signature);
  for (auto& [key, components] : parts) {
    const hubcore::TensorInfo* info = sig ? sig->FindInput(key) : nullptr;
    inputs.emplace(key, Value::FromComponents(info ? info->kind : hubcore::TensorKind::kDense,
                                              std::move(components)));
  }
  return inputs;
}

std::string CheckOutputs(const GoldenCall& call, const NamedValues& outputs) {
  for (const auto& t : call.tensors) {
    if (t.role != "output") continue;
    auto it = outputs.find(t.key);
    if (it == outputs.end()) return t.key + ": not returned";
    const auto& comps = it->second.components();
    std::string diff = Compare(
        t, t.component < static_cast<int>(comps.size()) ? comps[t.component].get() : nullptr);
    if (!diff.empty()) return diff;
  }
  return "";
}

TensorPtr FloatMatrix(int64_t rows, int64_t cols, float value) {
  const int64_t dims[2] = {rows, cols};
  TensorPtr t(TF_AllocateTensor(TF_FLOAT, dims, 2, rows * cols * sizeof(float)));
  std::fill_n(static_cast<float*>(TF_TensorData(t.get())), rows * cols, value);
  return t;
}

bool Contains(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

}  // namespace

TEST(RuntimeTest, RuntimeReproducesEveryGoldenCall) {
  const std::vector<GoldenCall> calls = GoldenCalls();
  EXPECT_TRUE(calls.size() >= 9u);
  std::map<std::string, std::unique_ptr<LoadedModule>> modules;
  std::set<std::string> seen;
  for (const GoldenCall& call : calls) {
    auto& m = modules[call.module];
    if (!m) ASSERT_OK(LoadedModule::Load(DataDir() + "/" + call.module, {}, &m));
    NamedValues outputs;
    const Status s = m->Run(call.signature, Inputs(*m, call), {}, &outputs);
    if (!s.ok()) {
      ADD_FAILURE() << (call.module + "." + call.signature + ": " + s.ToString());
      continue;
    }
    const std::string diff = CheckOutputs(call, outputs);
    if (!diff.empty()) {
      ADD_FAILURE() << (call.module + "." + call.signature + " " + diff);
    }
    seen.insert(call.module);
  }
  // Every fixture module, including the sparse-input, ragged-input and text ones.
  EXPECT_EQ(seen.size(), 6u);
}

TEST(RuntimeTest, RuntimeErrorsAreStatuses) {
  std::unique_ptr<LoadedModule> m;
  ASSERT_OK(LoadedModule::Load(DataDir() + "/tiny", {}, &m));
  NamedValues inputs, outputs;
  inputs.emplace("x", Value::Dense(FloatMatrix(2, 4, 1.0f)));
  Status s = m->Run("nope", inputs, {}, &outputs);
  EXPECT_EQ(s.code(), StatusCode::kSignatureNotFound);
  EXPECT_TRUE(Contains(s, "'default', 'encode', 'no_default'"));

  s = m->Run("default", inputs, {"nope"}, &outputs);
  EXPECT_TRUE(s.code() == StatusCode::kInvalidArgument && Contains(s, "'default', 'sum'"));

  NamedValues wide;
  wide.emplace("x", Value::Dense(FloatMatrix(2, 5, 1.0f)));
  s = m->Run("default", wide, {}, &outputs);
  EXPECT_TRUE(s.code() == StatusCode::kInvalidArgument && Contains(s, "Input 'x'") &&
              Contains(s, "(None, 4)"));

  NamedValues ints;
  const int64_t dims[2] = {1, 4};
  ints.emplace("x", Value::Dense(TensorPtr(TF_AllocateTensor(TF_INT32, dims, 2, 16))));
  s = m->Run("default", ints, {}, &outputs);
  EXPECT_TRUE(s.code() == StatusCode::kInvalidArgument && Contains(s, "Input 'x'") &&
              Contains(s, "float32") && Contains(s, "int32"));

  NamedValues none;
  s = m->Run("default", none, {}, &outputs);
  EXPECT_TRUE(s.code() == StatusCode::kInvalidArgument && Contains(s, "'x'"));

  LoadOptions train;
  train.tags = {"serve"};
  std::unique_ptr<LoadedModule> other;
  s = LoadedModule::Load(DataDir() + "/tiny", train, &other);
  EXPECT_TRUE(s.code() == StatusCode::kVariantNotFound && Contains(s, "{}, {train}"));
  EXPECT_TRUE(other == nullptr);

  LoadOptions libs;
  libs.custom_op_libraries = {"/no/such/ops.so"};
  s = LoadedModule::Load(DataDir() + "/tiny", libs, &other);
  EXPECT_TRUE(s.code() == StatusCode::kInvalidArgument && Contains(s, "/no/such/ops.so"));

  s = LoadedModule::Load(DataDir() + "/no_such_module", {}, &other);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
}

TEST(RuntimeTest, RuntimeRunsFromManyThreads) {
  std::unique_ptr<LoadedModule> m;
  LoadOptions options;
  options.intra_op_threads = 2;
  options.inter_op_threads = 2;
  ASSERT_OK(LoadedModule::Load(DataDir() + "/tiny", options, &m));
  auto run = [&](float v, std::vector<float>* out) {
    NamedValues inputs, outputs;
    inputs.emplace("x", Value::Dense(FloatMatrix(3, 4, v)));
    Status s = m->Run("default", inputs, {"default"}, &outputs);
    if (!s.ok()) return s;
    const TF_Tensor* t = outputs.at("default").tensor();
    const float* data = static_cast<const float*>(TF_TensorData(t));
    out->assign(data, data + TF_TensorElementCount(t));
    return s;
  };
  std::vector<std::vector<float>> serial(16);
  for (int i = 0; i < 16; ++i) ASSERT_OK(run(0.25f * i, &serial[i]));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        for (int i = t; i < 16; i += 8) {
          std::vector<float> got;
          if (!run(0.25f * i, &got).ok() || got != serial[i]) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(RuntimeTest, RuntimeLoadsTheTrainVariantByTags) {
  std::unique_ptr<LoadedModule> m;
  LoadOptions options;
  options.tags = {"train"};
  ASSERT_OK(LoadedModule::Load(DataDir() + "/batchnorm", options, &m));
  EXPECT_TRUE(m->tags() == std::set<std::string>{"train"});
  NamedValues inputs, outputs;
  inputs.emplace("default", Value::Dense(FloatMatrix(2, 5, 1.0f)));
  ASSERT_OK(m->Run("default", inputs, {}, &outputs));
  EXPECT_EQ(TF_Dim(outputs.at("default").tensor(), 0), 2);
}
