// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// hubcore::LoadedModule: a TF1 Hub module loaded for serving, with no graph building per call.
//
// Loading imports one graph variant into its own TF_Graph, opens a TF_Session, restores every
// variable from the module's checkpoint, runs the table initializers (assets point into the
// module directory) and prepares each signature's feed and fetch handles once. After that,
// `Run` is a single TF_SessionRun and may be called from many threads at once.
//
// clang-format off
//   std::unique_ptr<hubcore::LoadedModule> module;
//   hubcore::Status s = hubcore::LoadedModule::Load("/models/text", {}, &module);
//   if (!s.ok()) { std::cerr << s.ToString() << "\n"; return 1; }
//   hubcore::NamedValues inputs, outputs;
//   // MakeStringTensor: a helper building a TF_STRING tensor (TF_AllocateTensor + TF_StringCopy).
//   inputs.emplace("default", hubcore::Value::Dense(MakeStringTensor({"hello world"})));
//   s = module->Run("default", inputs, /*output_keys=*/{}, &outputs);  // {}: every output
//   const TF_Tensor* embedding = outputs.at("default").tensor();
// clang-format on
//
// A signature value is dense (one tensor), sparse (values, indices, dense_shape) or ragged
// (flat_values, row_splits_0 outermost, ...): `Value` holds its component tensors in that order,
// which is the order of `TensorInfo::tensor_names`.
#ifndef HUBCORE_RUNTIME_H_
#define HUBCORE_RUNTIME_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "hubcore/export.h"
#include "hubcore/module_spec.h"
#include "hubcore/status.h"
#include "tensorflow/c/c_api.h"

namespace hubcore {

// Owns a TF_Tensor (TF_DeleteTensor on destruction).
struct TensorDeleter {
  void operator()(TF_Tensor* t) const {
    if (t != nullptr) TF_DeleteTensor(t);
  }
};
using TensorPtr = std::unique_ptr<TF_Tensor, TensorDeleter>;

// One signature input or output: its kind and its component tensors.
class HUBCORE_API Value {
 public:
  Value() = default;
  static Value Dense(TensorPtr tensor);
  // `indices` int64 [nnz, rank], `values` [nnz], `dense_shape` int64 [rank].
  static Value Sparse(TensorPtr indices, TensorPtr values, TensorPtr dense_shape);
  // `row_splits` outermost first; one per ragged dimension.
  static Value Ragged(TensorPtr flat_values, std::vector<TensorPtr> row_splits);
  // Components in TensorInfo::tensor_names order (see the file comment).
  static Value FromComponents(TensorKind kind, std::vector<TensorPtr> components);

  TensorKind kind() const { return kind_; }
  const std::vector<TensorPtr>& components() const { return components_; }
  std::vector<TensorPtr>& mutable_components() { return components_; }

  // Dense: the tensor. Sparse: the values. Ragged: the flat values.
  TF_Tensor* tensor() const { return components_.empty() ? nullptr : components_[0].get(); }
  // Sparse only (nullptr otherwise).
  TF_Tensor* sparse_indices() const;
  TF_Tensor* sparse_dense_shape() const;
  // Ragged only: row_splits_i (0 = outermost), or nullptr.
  TF_Tensor* row_splits(int i) const;

 private:
  TensorKind kind_ = TensorKind::kDense;
  std::vector<TensorPtr> components_;
};

using NamedValues = std::map<std::string, Value>;

struct LoadOptions {
  // The graph variant to load; the default (empty) set is the untagged variant. A module without
  // an untagged variant needs its tags named here (the error lists them).
  std::set<std::string> tags;
  // Session thread pools; 0 lets TensorFlow choose (one thread per core).
  int intra_op_threads = 0;
  int inter_op_threads = 0;
  // Shared libraries with custom ops, loaded (TF_LoadLibrary) before the graph is imported.
  std::vector<std::string> custom_op_libraries;
  // Refuse (kPermissionDenied) a variant that uses an op outside the safe-mode allowlist
  // (hubcore/op_policy.h) before anything of it is imported or run.
  bool safe_mode = false;
};

class HUBCORE_API LoadedModule {
 public:
  // Loads the module directory at `path`. Errors besides ModuleSpec::Load's: kVariantNotFound
  // (no variant with `options.tags`, listing the variants), kInvalidArgument (a custom op
  // library that fails to load), kFailedPrecondition (the graph uses an op type TensorFlow does
  // not know; names it), kDataLoss (a variable missing from the checkpoint or with another dtype
  // or shape there), kInternal (restore or table initialization failed in TensorFlow).
  static Status Load(const std::string& path, const LoadOptions& options,
                     std::unique_ptr<LoadedModule>* module);
  // Loads a parsed spec. The loaded module keeps no reference to `spec`.
  static Status Load(const ModuleSpec& spec, const LoadOptions& options,
                     std::unique_ptr<LoadedModule>* module);

  ~LoadedModule();
  LoadedModule(const LoadedModule&) = delete;
  LoadedModule& operator=(const LoadedModule&) = delete;

  // Runs `signature` on `inputs` (every input of the signature, by key) and stores the outputs
  // named in `output_keys` (empty: all of them) in `*outputs`, replacing its contents. `inputs`
  // stay owned by the caller; the output tensors are new. Thread-safe: any number of threads may
  // call Run on one module at once. Errors: kSignatureNotFound for an unknown signature (lists
  // the existing ones); kInvalidArgument for an unknown or missing input or output, or a
  // component with the wrong kind, dtype or shape (names the input); kInvalidArgument or
  // kInternal when TensorFlow fails while running (its message included).
  Status Run(const std::string& signature, const NamedValues& inputs,
             const std::vector<std::string>& output_keys, NamedValues* outputs) const;

  const std::string& path() const;
  const std::set<std::string>& tags() const;
  // The loaded variant's signatures (sorted by name), as ModuleSpec describes them.
  const std::vector<SignatureInfo>& signatures() const;
  const SignatureInfo* FindSignature(const std::string& name) const;

  struct Impl;  // Internal (TF graph, session and prepared signatures).

 private:
  explicit LoadedModule(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcore

#endif  // HUBCORE_RUNTIME_H_
