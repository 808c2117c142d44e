// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// hubcore::GraphRewriter: turns a module's graph variant into the two GraphDefs a `hub.Module`
// instance imports into the caller's graph, each in one step.
//
//  * The state graph (once per instance): every state op (a stateful op type with no inputs, e.g.
//    VarHandleOp, VariableV2, HashTableV2), the variables' initializers, table initializers, asset
//    Consts and whatever the kept collections reference. Node names, inputs, control inputs and
//    `_class` colocation entries carry the instance scope ("module/..."), non-empty `shared_name`
//    attributes too. With a checkpoint, each variable's initializer restores its value from it
//    (RestoreV2 + assign), so `global_variables_initializer()` loads the pretrained values.
//  * The apply graph (once per call): only the transitive closure of the chosen signature's
//    outputs (plus, when trainable, every update op that needs no other signature's input, and
//    the asset Consts), with references to state ops and to signature inputs left as input-map keys
//    for the importer. What does not depend on the scopes is computed once per (variant,
//    signature) and cached, so every call costs the same.
//
//   std::shared_ptr<const hubcore::ModuleSpec> spec = ...;
//   hubcore::GraphRewriter rewriter(spec);
//   hubcore::StateGraph state;
//   hubcore::StateGraphOptions opts;
//   opts.scope = "module";
//   opts.checkpoint_prefix = spec->checkpoint_prefix();
//   hubcore::Status s = rewriter.BuildStateGraph({}, opts, &state);
//
// Thread safety: a GraphRewriter may be used from several threads at once.
#ifndef HUBCORE_GRAPH_REWRITE_H_
#define HUBCORE_GRAPH_REWRITE_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "hubcore/export.h"
#include "hubcore/module_spec.h"
#include "hubcore/status.h"

namespace hubcore {

struct StateGraphOptions {
  std::string scope;              // Absolute instance scope without the trailing '/': "module".
  bool trainable = false;         // Keep trainable_variables and regularization_losses.
  std::string checkpoint_prefix;  // Restore variables from here; "" keeps the initializers.
};

// What the caller imports for an instance's state. All names carry the scope.
struct StateGraph {
  std::string graph_def;  // Serialized tensorflow.GraphDef.
  // node_list collections (table_initializer, asset_filepaths, regularization_losses).
  std::map<std::string, std::vector<std::string>> node_lists;
  // bytes_list collections: serialized VariableDefs (variables, trainable_variables,
  // model_variables) with scoped names; cond_context / while_context entries keep their
  // module-relative names (the importer's from_proto adds the scope).
  std::map<std::string, std::vector<std::string>> bytes_lists;
  std::vector<std::string> colocated_nodes;  // Nodes that keep a `_class` attribute.
  // The graph's serialized FunctionDefLibrary (also inside graph_def), "" when it has none: the
  // Python layer registers these functions so that gradients through v2 control flow
  // (If/While ops) find their branch graphs.
  std::string function_library;
  int num_nodes = 0;
};

struct ApplyGraphOptions {
  std::string scope;        // Absolute apply scope without '/': "module_apply_default".
  std::string state_scope;  // The instance scope given to BuildStateGraph.
  bool trainable = false;   // Add the update ops that need no other signature's inputs.
  // Colocation groups ("loc:@op") of the caller tensors fed to signature inputs, keyed by the
  // module-relative input tensor name ("split:1"); imported ops colocated with such an input's
  // op get them. When that op has several outputs, every output must map to the same groups
  // (an output the call does not feed keeps the op's own group), else kInvalidArgument.
  std::map<std::string, std::vector<std::string>> input_colocation;
};

// One input-map entry of an apply graph. `key` is how the GraphDef refers to the tensor
// ("module/w:0", or "^module/w" for a control input).
struct InputMapping {
  std::string key;
  bool is_state = false;  // True: map to the caller-graph tensor/op named `key` (minus '^').
  std::string input_key;  // Otherwise: the signature input ...
  int component = 0;      // ... and its component (sparse: values, indices, dense_shape).
};

// Where a signature output component comes from after the import.
struct OutputRef {
  enum Kind { kImported = 0, kInput = 1, kState = 2 };
  Kind kind = kImported;
  std::string tensor;     // kImported / kState: the tensor name in the caller's graph.
  std::string input_key;  // kInput: the signature input passed through ...
  int component = 0;      // ... and its component.
};

struct ApplyGraph {
  std::string graph_def;  // Serialized tensorflow.GraphDef, names under the apply scope.
  std::vector<InputMapping> input_map;
  // Output key -> its components (1 for dense, values/indices/dense_shape for sparse, ...).
  std::map<std::string, std::vector<OutputRef>> outputs;
  std::vector<std::string> update_ops;     // Scoped op or tensor names (trainable only).
  std::vector<std::string> asset_tensors;  // Scoped asset Const tensors ("x/asset_path:0").
  std::vector<std::string> context_defs;   // Serialized cond_context defs (module-relative).
  std::vector<std::string> while_context_defs;
  std::vector<std::string> colocated_nodes;  // Nodes that keep a `_class` attribute.
  std::string function_library;              // As in StateGraph.
  int num_nodes = 0;
};

class HUBCORE_API GraphRewriter {
 public:
  explicit GraphRewriter(std::shared_ptr<const ModuleSpec> spec);
  ~GraphRewriter();
  GraphRewriter(const GraphRewriter&) = delete;
  GraphRewriter& operator=(const GraphRewriter&) = delete;

  // Builds the state graph of the variant `tags`. kVariantNotFound for an unknown variant;
  // kDataLoss when the module cannot be instantiated (a state op with != 1 outputs, a variable
  // missing from the checkpoint or with another dtype or shape there, a dangling input).
  Status BuildStateGraph(const std::set<std::string>& tags, const StateGraphOptions& options,
                         StateGraph* out);

  // Builds the apply graph of `signature` in the variant `tags` (kVariantNotFound or
  // kSignatureNotFound if either is unknown).
  Status BuildApplyGraph(const std::set<std::string>& tags, const std::string& signature,
                         const ApplyGraphOptions& options, ApplyGraph* out);

  const ModuleSpec& spec() const { return *spec_; }

 private:
  struct Impl;
  std::shared_ptr<const ModuleSpec> spec_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcore

#endif  // HUBCORE_GRAPH_REWRITE_H_
