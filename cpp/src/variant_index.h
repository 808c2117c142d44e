// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Variant analysis for the graph rewriter: everything about a graph variant that does not depend
// on the instance or apply scopes (node index, edges, state ops, assets), computed once per
// variant, and the node-level helpers the state and apply graphs share (closures, prefixing,
// colocation rewriting).
#ifndef HUBCORE_SRC_VARIANT_INDEX_H_
#define HUBCORE_SRC_VARIANT_INDEX_H_

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hubcore/module_spec.h"
#include "hubcore/status.h"
#include "module_spec_data.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"

namespace hubcore::internal {

constexpr char kColocationAttr[] = "_class";
constexpr char kColocationPrefix[] = "loc:@";
constexpr char kSharedName[] = "shared_name";
// Shape annotations from export_meta_graph: advisory only (TF re-infers shapes on import), and
// a sizeable share of every imported node's memory, so they are not copied.
constexpr char kOutputShapes[] = "_output_shapes";

// One parsed input of a node: the producing node index and output (-1 for a control input).
struct Edge {
  int node;
  int index;
};

// Everything about a variant that does not depend on scopes; built once.
struct VariantIndex {
  const tensorflow::MetaGraphDef* meta = nullptr;
  const GraphVariant* variant = nullptr;
  std::unordered_map<std::string, int> node_index;
  std::vector<std::vector<Edge>> inputs;  // Per node.
  std::vector<char> is_state;
  std::vector<int> asset_nodes;
  Status error;  // Set when the variant cannot be instantiated at all.

  const tensorflow::NodeDef& node(int i) const { return meta->graph_def().node(i); }

  int Find(const std::string& tensor_or_op, int* index = nullptr) const {
    std::string name;
    int idx;
    ParseTensorName(tensor_or_op, &name, &idx);
    if (index) *index = idx;
    auto it = node_index.find(name);
    return it == node_index.end() ? -1 : it->second;
  }

  const tensorflow::CollectionDef* Collection(const std::string& key) const {
    auto it = meta->collection_def().find(key);
    return it == meta->collection_def().end() ? nullptr : &it->second;
  }
};

// Number of outputs of node `node` from its op definition (the module's stripped op list, else
// the registry); -1 when the op is unknown.
int NumOutputs(const VariantIndex& index, int node);

// Indexes `meta` (the MetaGraphDef of `variant`). kDataLoss for a dangling input or asset; a
// variant that parses but cannot be instantiated (a state op with != 1 outputs) gets
// `index->error` instead.
Status BuildIndex(const tensorflow::MetaGraphDef& meta, const GraphVariant& variant,
                  VariantIndex* index);

// Marks the transitive closure of `roots` in `keep`. `stop(node, index)` returns true for an
// edge that must not be followed (a mapped tensor); control edges have index -1.
template <typename Stop>
void Closure(const VariantIndex& index, const std::vector<int>& roots, std::vector<char>* keep,
             Stop stop) {
  std::vector<int> stack;
  for (int r : roots) {
    if (!(*keep)[r]) {
      (*keep)[r] = 1;
      stack.push_back(r);
    }
  }
  while (!stack.empty()) {
    const int n = stack.back();
    stack.pop_back();
    for (const Edge& e : index.inputs[n]) {
      if ((*keep)[e.node] || stop(e.node, e.index)) continue;
      (*keep)[e.node] = 1;
      stack.push_back(e.node);
    }
  }
}

// Serialized CondContextDef / WhileContextDef entries of collection `key` whose values (those of
// nested contexts included) touch a kept node; every node they name is added to `extra_roots`
// (the pivots of a cond branch, e.g., need not be on any output's path).
void CollectContexts(const VariantIndex& index, const std::string& key,
                     const std::vector<char>& keep, std::vector<std::string>* out,
                     std::vector<int>* extra_roots);

// What a v1 control-flow context def (collection "cond_context" or "while_context") names, its
// nested contexts included.
struct ContextSummary {
  std::string name;                    // context_name
  std::vector<std::string> tensors;    // Every tensor it refers to.
  std::vector<std::string> owned_ops;  // The ops inside it (its values that are not external).
  bool has_nested_while = false;
};

// False when `bytes` does not parse as the def of collection `key`.
bool SummarizeContext(const std::string& key, const std::string& bytes, ContextSummary* out);

// Maps a tensor name of a context def to its name in a pruned graph; false when it is not there.
using ContextNameMap = std::function<bool(const std::string& tensor, std::string* mapped)>;

// Rewrites a context def of collection `key` for a pruned graph, nested contexts included:
// every tensor name goes through `map`; values and external values it drops are left out, and
// an unresolvable `maximum_iterations_name` is cleared (TensorFlow then treats the bound as
// unknown). A required tensor (predicate, pivots, loop enters and exits) that `map` drops makes
// the call return false with `*missing` naming it, since the context cannot be rebuilt.
bool RestrictContext(const std::string& key, const std::string& bytes, const ContextNameMap& map,
                     std::string* out, std::string* missing);

inline std::string Join(const std::string& scope, const std::string& name) {
  return scope.empty() ? name : scope + "/" + name;
}

inline std::string TensorName(const std::string& node, int index) {
  return node + ":" + std::to_string(index);
}

// The update ops a trainable call runs (tensorflow_hub imported them all, with the whole graph):
// each entry of the `update_ops` collection whose closure, stopping where `stop(node, index)`
// holds (state ops, this signature's inputs), needs no input of another signature and no other
// Placeholder, which nothing would feed. Batch-norm moving averages depend on this signature's
// inputs; a step counter depends on nothing; both run. Appends (name, node) in collection order;
// kDataLoss names an entry that is not in the graph.
template <typename Stop>
Status SelectUpdateOps(const VariantIndex& index, const std::string& where, Stop stop,
                       std::vector<std::pair<std::string, int>>* out) {
  const auto* updates = index.Collection("update_ops");
  if (updates == nullptr) return Status::OK();
  const auto& graph = index.meta->graph_def();
  std::set<std::string> signature_inputs;
  for (const auto& sig : index.variant->signatures) {
    for (const auto& input : sig.inputs) {
      for (const auto& name : input.tensor_names) {
        std::string node;
        int idx;
        ParseTensorName(name, &node, &idx);
        signature_inputs.insert(TensorName(node, idx));
      }
    }
  }
  auto unfed = [&](int node, int idx) {
    if (idx >= 0 && signature_inputs.count(TensorName(graph.node(node).name(), idx))) return true;
    const std::string& op = graph.node(node).op();
    return op == "Placeholder" || op == "PlaceholderV2";
  };
  std::vector<char> seen(graph.node_size(), 0);
  std::vector<int> stack;
  for (const auto& name : updates->node_list().value()) {
    const int root = index.Find(name);
    if (root < 0) return DataLoss(where + ": update op '" + name + "' is not in the graph");
    std::fill(seen.begin(), seen.end(), 0);
    seen[root] = 1;
    stack.assign(1, root);
    bool fed = !unfed(root, -1);
    while (fed && !stack.empty()) {
      const int n = stack.back();
      stack.pop_back();
      for (const Edge& e : index.inputs[n]) {
        if (stop(e.node, e.index)) continue;
        if (unfed(e.node, e.index)) {
          fed = false;
          break;
        }
        if (!seen[e.node]) {
          seen[e.node] = 1;
          stack.push_back(e.node);
        }
      }
    }
    if (fed) out->emplace_back(name, root);
  }
  return Status::OK();
}

// Prefixes a non-empty `shared_name` attribute with `scope`.
void PrefixSharedName(const std::string& scope, tensorflow::NodeDef* node);

// Rewrites the `_class` colocation list of `node` with `map(X)` for each "loc:@X" entry
// (an empty result drops the entry; the attribute goes away when nothing is left).
template <typename Map>
void RewriteColocation(tensorflow::NodeDef* node, Map map) {
  auto it = node->mutable_attr()->find(kColocationAttr);
  if (it == node->mutable_attr()->end()) return;
  std::vector<std::string> result;
  for (const auto& entry : it->second.list().s()) {
    if (entry.rfind(kColocationPrefix, 0) != 0) {
      result.push_back(entry);
      continue;
    }
    for (auto& mapped : map(entry.substr(sizeof(kColocationPrefix) - 1))) {
      if (std::find(result.begin(), result.end(), mapped) == result.end()) {
        result.push_back(std::move(mapped));
      }
    }
  }
  if (result.empty()) {
    node->mutable_attr()->erase(it);
    return;
  }
  auto* list = it->second.mutable_list();
  list->clear_s();
  for (auto& s : result) list->add_s(std::move(s));
}

// Copies the versions and the function library (when there is one).
void CopyGraphHeader(const tensorflow::GraphDef& from, tensorflow::GraphDef* to);

}  // namespace hubcore::internal

#endif  // HUBCORE_SRC_VARIANT_INDEX_H_
