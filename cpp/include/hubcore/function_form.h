// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// hubcore::FunctionFormBuilder: a graph variant's signatures as self-contained functions, the
// form TF2 code (`hubcore.load`, `export-tf2`) wraps into `tf.function`s.
//
// A function form is a pruned GraphDef whose only free values are Placeholders ("arguments"):
// the signature's input components, one DT_RESOURCE handle per state op it uses (variables,
// tables) and one string per asset file. Nothing in it creates or initializes state, so the
// caller owns the state (TF2 resource variables, tables) and passes its handles in. TF1 ref
// variables become resource handles here: `VariableV2` -> a resource argument, implicit reads
// -> `ReadVariableOp`, `Assign`/`AssignAdd`/`AssignSub`/`Scatter*` -> their resource ops, so
// the caller never sees the difference. Colocation, devices and shape annotations are dropped
// (the TF2 runtime places functions itself). Library functions (v2 control flow) are renamed
// after their content, so that functions of different modules never clash by name in TF2's
// eager context.
//
//   hubcore::FunctionFormBuilder builder(spec);
//   hubcore::FunctionForm form;
//   hubcore::Status s = builder.BuildSignature({}, "default", /*run_update_ops=*/false, &form);
//
// Thread safety: a FunctionFormBuilder may be used from several threads at once.
#ifndef HUBCORE_FUNCTION_FORM_H_
#define HUBCORE_FUNCTION_FORM_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "hubcore/export.h"
#include "hubcore/module_spec.h"
#include "hubcore/status.h"

namespace hubcore {

// A state op of a graph variant: the caller creates it once and passes its handle to functions.
struct StateResource {
  std::string node;          // Module-relative node name: "w", "table/part_0", "hash_table".
  bool is_variable = false;  // VarHandleOp, or a TF1 ref variable (VariableV2) turned into one.
  // Not a variable: the serialized NodeDef that creates the resource (e.g. HashTableV2), without
  // device, colocation or inputs, so that the caller can run it as one op.
  std::string node_def;
};

// One argument of a function form: a Placeholder node of its GraphDef.
struct FunctionArg {
  enum Kind { kInput = 0, kState = 1, kAsset = 2 };
  Kind kind = kInput;
  std::string placeholder;  // The node name in FunctionForm::graph_def; the argument is output 0.
  int dtype = 0;            // TF_DataType (DT_RESOURCE for state).
  std::string input_key;    // kInput: the signature input ...
  int component = 0;        // ... and its component (TensorInfo::tensor_names order).
  std::string state;        // kState: StateResource::node.
  std::string asset_path;   // kAsset: the asset file (absolute path).
};

struct FunctionForm {
  std::string graph_def;  // Serialized tensorflow.GraphDef (with the graph's function library).
  std::vector<FunctionArg> args;
  // Output key -> its component tensors in graph_def ("node:0"): one for a dense output,
  // values/indices/dense_shape for a sparse one, the flat components of a ragged one.
  std::map<std::string, std::vector<std::string>> outputs;
  std::vector<std::string> targets;  // Ops run for their effect (update ops, table initializers).
  // TF1 (v1) control flow: the serialized CondContextDef of every tf.compat.v1.cond in the form,
  // with names as in graph_def, for the caller to rebuild after importing it (TF2 orders the
  // branches' resource ops and differentiates Switch/Merge by them). Each TF1 while loop is a
  // function of graph_def's library instead, called by a StatefulPartitionedCall node whose
  // `_gradient_op_type` is "HubcoreV1WhileLoop" and whose `_hubcore_message` says why it has no
  // gradient in TF2; `_hubcore_value_types` / `_hubcore_value_shapes` give, per input, the dtype
  // and shape of the variable behind a resource handle (0 and unknown rank otherwise).
  std::vector<std::string> cond_contexts;
  int num_nodes = 0;
};

class HUBCORE_API FunctionFormBuilder {
 public:
  explicit FunctionFormBuilder(std::shared_ptr<const ModuleSpec> spec);
  ~FunctionFormBuilder();
  FunctionFormBuilder(const FunctionFormBuilder&) = delete;
  FunctionFormBuilder& operator=(const FunctionFormBuilder&) = delete;

  // Every state op of the variant `tags`, in graph order. kVariantNotFound for an unknown
  // variant; kDataLoss for a graph with dangling inputs.
  Status ListState(const std::set<std::string>& tags, std::vector<StateResource>* out);

  // `signature` of the variant as a function; with `run_update_ops`, the update ops that
  // hub.Module(trainable=True) runs with it (batch-norm moving averages, step counters: those
  // needing no other signature's input) become targets.
  // kVariantNotFound / kSignatureNotFound for an unknown variant / signature; kUnimplemented for a
  // TF1 construct with no resource equivalent (ref control flow, an unknown op writing a ref
  // variable) or TF1 control flow the graph's cond_context / while_context collections do not
  // describe.
  Status BuildSignature(const std::set<std::string>& tags, const std::string& signature,
                        bool run_update_ops, FunctionForm* out);

  // The variant's table initializers that act on the state op `state` (targets, no inputs).
  Status BuildInitializer(const std::set<std::string>& tags, const std::string& state,
                          FunctionForm* out);

  // The variant's regularization losses, as outputs "0", "1", ... in collection order.
  Status BuildRegularizationLosses(const std::set<std::string>& tags, FunctionForm* out);

  const ModuleSpec& spec() const { return *spec_; }

 private:
  struct Impl;
  std::shared_ptr<const ModuleSpec> spec_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcore

#endif  // HUBCORE_FUNCTION_FORM_H_
