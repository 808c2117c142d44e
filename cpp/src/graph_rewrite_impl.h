// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// GraphRewriter's caches, shared by its three parts: variant analysis (variant_index.h, cached
// per variant), the state graph (state_graph.cc) and the apply graph (apply_graph.cc, whose
// scope-independent plan is cached per signature).
#ifndef HUBCORE_SRC_GRAPH_REWRITE_IMPL_H_
#define HUBCORE_SRC_GRAPH_REWRITE_IMPL_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hubcore/graph_rewrite.h"
#include "restore_ops.h"
#include "variant_index.h"

namespace hubcore {
namespace internal {

// Per (signature, trainable): the pruned node set and how it connects to state and inputs.
struct ApplyPlan {
  std::vector<int> nodes;  // Kept nodes, in graph order.
  std::vector<char> keep;  // Per node.
  // Signature input tensors ("x:0") -> (input key, component).
  std::unordered_map<std::string, std::pair<std::string, int>> inputs;
  std::vector<int> used_state;           // State nodes read through data edges.
  std::vector<int> control_state;        // State nodes used as control inputs.
  std::vector<std::string> used_inputs;  // Signature input tensors actually referenced.
  std::vector<std::string> update_ops;   // Module-relative names.
  std::vector<std::string> contexts;
  std::vector<std::string> while_contexts;
  const SignatureInfo* signature = nullptr;
};

// How errors name the module and variant that hubcore.Module instantiates (Runner's wording).
inline std::string ModuleWhere(const ModuleSpec& spec, const std::set<std::string>& tags) {
  GraphVariant variant;
  variant.tags = tags;
  const std::string path =
      spec.path().empty() ? "created by module_fn (not exported)" : spec.path();
  return "Module " + path + " (graph variant " + variant.TagsToString() + ")";
}

}  // namespace internal

struct GraphRewriter::Impl {
  std::mutex mu;
  std::map<int, std::unique_ptr<internal::VariantIndex>> indexes;  // By meta graph index.
  std::map<std::tuple<int, std::string, bool>, std::unique_ptr<internal::ApplyPlan>> plans;
  std::map<std::string, internal::CheckpointIndex> checkpoints;  // By checkpoint prefix.

  // The analysis of the variant `tags` of `spec`, built on first use (call with `mu` held).
  // kInvalidArgument for an unknown variant.
  Status GetIndex(const ModuleSpec& spec, const std::set<std::string>& tags,
                  const internal::VariantIndex** out);
};

}  // namespace hubcore

#endif  // HUBCORE_SRC_GRAPH_REWRITE_IMPL_H_
