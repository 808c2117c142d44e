// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// serve_module: loads a TF1 Hub module with the hubcore runtime (no Python) and runs a signature
// on inputs read from a file, printing every output.
//
//   serve_module MODULE_DIR INPUT_FILE [--signature NAME] [--tags a,b] [--threads N]
//
// INPUT_FILE feeds the signature's single dense input: a .npy array (float32/float64/int32/int64,
// C order, little-endian) or, for a string input, a text file with one string per line.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "hubcore/runtime.h"
#include "tensorflow/c/tf_tstring.h"

namespace {

// Reads a .npy file into a new tensor; returns an error message, or "" on success.
std::string ReadNpy(const std::string& path, hubcore::TensorPtr* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open " + path;
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) return path + " is not a .npy file";
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t len16 = 0;
    in.read(reinterpret_cast<char*>(&len16), 2);
    header_len = len16;
  } else {
    in.read(reinterpret_cast<char*>(&header_len), 4);
  }
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);
  auto field = [&](const std::string& key) {
    const size_t at = header.find("'" + key + "'");
    return at == std::string::npos ? std::string() : header.substr(header.find(':', at) + 1);
  };
  const std::string descr = field("descr");
  if (field("fortran_order").find("True") < field("fortran_order").find(',')) {
    return path + ": Fortran-order arrays are not supported";
  }
  TF_DataType type;
  size_t item = 0;
  if (descr.find("<f4") != std::string::npos) {
    type = TF_FLOAT, item = 4;
  } else if (descr.find("<f8") != std::string::npos) {
    type = TF_DOUBLE, item = 8;
  } else if (descr.find("<i4") != std::string::npos) {
    type = TF_INT32, item = 4;
  } else if (descr.find("<i8") != std::string::npos) {
    type = TF_INT64, item = 8;
  } else {
    return path + ": unsupported dtype " + descr.substr(0, descr.find(','));
  }
  std::string shape = field("shape");
  shape = shape.substr(shape.find('(') + 1, shape.find(')') - shape.find('(') - 1);
  std::vector<int64_t> dims;
  std::stringstream ss(shape);
  for (std::string d; std::getline(ss, d, ',');) {
    if (d.find_first_of("0123456789") != std::string::npos) dims.push_back(std::stoll(d));
  }
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  const size_t bytes = static_cast<size_t>(count) * item;
  out->reset(TF_AllocateTensor(type, dims.data(), static_cast<int>(dims.size()), bytes));
  in.read(static_cast<char*>(TF_TensorData(out->get())), static_cast<std::streamsize>(bytes));
  if (!in) return path + " is truncated";
  return "";
}

hubcore::TensorPtr ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const int64_t n = static_cast<int64_t>(lines.size());
  hubcore::TensorPtr t(TF_AllocateTensor(TF_STRING, &n, 1, n * sizeof(TF_TString)));
  auto* strings = static_cast<TF_TString*>(TF_TensorData(t.get()));
  for (int64_t i = 0; i < n; ++i) {
    TF_StringInit(&strings[i]);
    TF_StringCopy(&strings[i], lines[i].data(), lines[i].size());
  }
  return t;
}

void Print(const std::string& name, const TF_Tensor* t) {
  std::cout.precision(9);
  std::cout << name << ": " << hubcore::DataTypeName(TF_TensorType(t)) << " [";
  for (int d = 0; d < TF_NumDims(t); ++d) std::cout << (d ? ", " : "") << TF_Dim(t, d);
  std::cout << "]\n ";
  const int64_t n = TF_TensorElementCount(t);
  const void* data = TF_TensorData(t);
  for (int64_t i = 0; i < n; ++i) {
    std::cout << " ";
    switch (TF_TensorType(t)) {
      case TF_FLOAT:
        std::cout << static_cast<const float*>(data)[i];
        break;
      case TF_DOUBLE:
        std::cout << static_cast<const double*>(data)[i];
        break;
      case TF_INT32:
        std::cout << static_cast<const int32_t*>(data)[i];
        break;
      case TF_INT64:
        std::cout << static_cast<const int64_t*>(data)[i];
        break;
      case TF_STRING: {
        const auto* s = static_cast<const TF_TString*>(data) + i;
        std::cout << '"' << std::string(TF_StringGetDataPointer(s), TF_StringGetSize(s)) << '"';
        break;
      }
      default:
        std::cout << "?";
    }
  }
  std::cout << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string signature = "default";
  hubcore::LoadOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--signature" || arg == "--tags" || arg == "--threads") && i + 1 < argc) {
      const std::string value = argv[++i];
      if (arg == "--signature") signature = value;
      if (arg == "--threads") options.intra_op_threads = std::stoi(value);
      if (arg == "--tags") {
        std::stringstream ss(value);
        for (std::string tag; std::getline(ss, tag, ',');) options.tags.insert(tag);
      }
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2) {
    std::cerr << "usage: " << argv[0]
              << " MODULE_DIR INPUT_FILE [--signature NAME] [--tags a,b] [--threads N]\n";
    return 2;
  }
  std::unique_ptr<hubcore::LoadedModule> module;
  hubcore::Status status = hubcore::LoadedModule::Load(positional[0], options, &module);
  if (!status.ok()) {
    std::cerr << status.ToString() << "\n";
    return 1;
  }
  const hubcore::SignatureInfo* sig = module->FindSignature(signature);
  if (sig == nullptr || sig->inputs.size() != 1 ||
      sig->inputs[0].kind != hubcore::TensorKind::kDense) {
    std::cerr << "signature '" << signature << "' must exist and have one dense input\n";
    return 1;
  }
  const hubcore::TensorInfo& input = sig->inputs[0];
  hubcore::TensorPtr tensor;
  if (input.dtype == TF_STRING) {
    tensor = ReadLines(positional[1]);
  } else {
    const std::string error = ReadNpy(positional[1], &tensor);
    if (!error.empty()) {
      std::cerr << error << "\n";
      return 1;
    }
  }
  hubcore::NamedValues inputs, outputs;
  inputs.emplace(input.key, hubcore::Value::Dense(std::move(tensor)));
  status = module->Run(signature, inputs, {}, &outputs);
  if (!status.ok()) {
    std::cerr << status.ToString() << "\n";
    return 1;
  }
  for (const auto& [key, value] : outputs) {
    if (value.kind() == hubcore::TensorKind::kDense) {
      Print(key, value.tensor());
    } else {
      Print(key + ".values", value.tensor());
      if (value.sparse_indices()) Print(key + ".indices", value.sparse_indices());
      if (value.sparse_dense_shape()) Print(key + ".dense_shape", value.sparse_dense_shape());
      for (int i = 0; value.row_splits(i); ++i) {
        Print(key + ".row_splits_" + std::to_string(i), value.row_splits(i));
      }
    }
  }
  return 0;
}
