// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// GraphRewriter::BuildApplyGraph: one call of a signature on a hub.Module instance, pruned to
// what the signature's outputs need, with state and inputs left as input-map keys.
#include <algorithm>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "graph_rewrite_impl.h"
#include "hubcore/graph_rewrite.h"
#include "tensorflow/core/framework/attr_value.pb.h"

namespace hubcore {
namespace {

using internal::ApplyPlan;
using internal::CopyGraphHeader;
using internal::Edge;
using internal::Join;
using internal::kColocationAttr;
using internal::kColocationPrefix;
using internal::kOutputShapes;
using internal::ParseTensorName;
using internal::PrefixSharedName;
using internal::RewriteColocation;
using internal::TensorName;
using internal::VariantIndex;

// Apply step 1 (cached per signature): the closure of the signature's outputs (plus, when
// trainable, the update ops internal::SelectUpdateOps picks, and the asset Consts), stopping at
// state ops and signature inputs, and how it connects to them.
Status BuildPlan(const VariantIndex& index, const SignatureInfo& sig, bool trainable,
                 ApplyPlan* plan) {
  plan->signature = &sig;
  const auto& graph = index.meta->graph_def();
  const std::string where =
      "signature '" + sig.name + "' of graph variant " + index.variant->TagsToString();
  for (const auto& input : sig.inputs) {
    for (size_t c = 0; c < input.tensor_names.size(); ++c) {
      std::string node;
      int idx;
      ParseTensorName(input.tensor_names[c], &node, &idx);
      plan->inputs[TensorName(node, idx)] = {input.key, static_cast<int>(c)};
    }
  }
  auto is_input = [&](int node, int idx) {
    return idx >= 0 && plan->inputs.count(TensorName(graph.node(node).name(), idx)) > 0;
  };
  auto stop = [&](int node, int idx) { return index.is_state[node] || is_input(node, idx); };

  std::vector<int> roots;
  for (const auto& output : sig.outputs) {
    for (const auto& name : output.tensor_names) {
      int idx;
      const int n = index.Find(name, &idx);
      if (n < 0) return DataLoss(where + ": output tensor '" + name + "' is not in the graph");
      if (!stop(n, idx)) roots.push_back(n);
    }
  }
  for (int n : index.asset_nodes) roots.push_back(n);

  if (trainable) {
    std::vector<std::pair<std::string, int>> updates;
    HUBCORE_RETURN_IF_ERROR(internal::SelectUpdateOps(index, where, stop, &updates));
    for (const auto& [name, node] : updates) {
      plan->update_ops.push_back(name);
      roots.push_back(node);
    }
  }

  plan->keep.assign(graph.node_size(), 0);
  internal::Closure(index, roots, &plan->keep, stop);
  std::vector<std::string> cond_contexts, while_contexts;
  {
    std::vector<int> extra;
    internal::CollectContexts(index, "cond_context", plan->keep, &cond_contexts, &extra);
    internal::CollectContexts(index, "while_context", plan->keep, &while_contexts, &extra);
    std::vector<int> filtered;
    for (int n : extra) {
      if (!index.is_state[n]) filtered.push_back(n);
    }
    internal::Closure(index, filtered, &plan->keep, stop);
  }
  // The contexts are rebuilt under the apply scope, where state ops and signature inputs do not
  // exist (they stay in the instance scope or are the caller's tensors): names of those are left
  // out, so that every name resolves there.
  auto in_apply_scope = [&](const std::string& tensor, std::string* mapped) {
    int idx;
    const int n = index.Find(tensor, &idx);
    if (n < 0 || !plan->keep[n] || index.is_state[n] || is_input(n, idx)) return false;
    *mapped = TensorName(graph.node(n).name(), idx);
    return true;
  };
  for (auto [defs, key, out] :
       {std::tuple{&cond_contexts, "cond_context", &plan->contexts},
        std::tuple{&while_contexts, "while_context", &plan->while_contexts}}) {
    for (const auto& bytes : *defs) {
      std::string restricted, missing;
      if (internal::RestrictContext(key, bytes, in_apply_scope, &restricted, &missing)) {
        out->push_back(std::move(restricted));
      }
    }
  }
  std::vector<char> state_data(graph.node_size(), 0), state_control(graph.node_size(), 0);
  std::set<std::string> used_inputs;
  for (int n = 0; n < graph.node_size(); ++n) {
    if (!plan->keep[n]) continue;
    plan->nodes.push_back(n);
    for (const Edge& e : index.inputs[n]) {
      if (index.is_state[e.node]) {
        (e.index < 0 ? state_control : state_data)[e.node] = 1;
      } else if (is_input(e.node, e.index)) {
        used_inputs.insert(TensorName(graph.node(e.node).name(), e.index));
      }
    }
  }
  for (int n = 0; n < graph.node_size(); ++n) {
    if (state_data[n]) plan->used_state.push_back(n);
    if (state_control[n]) plan->control_state.push_back(n);
  }
  plan->used_inputs.assign(used_inputs.begin(), used_inputs.end());
  return Status::OK();
}

std::string GroupsText(const std::vector<std::string>& groups) {
  std::string text = "[";
  for (size_t i = 0; i < groups.size(); ++i) text += (i ? ", b'" : "b'") + groups[i] + "'";
  return text + "]";
}

// Colocation with node `n` when some of its outputs are this signature's inputs: the groups of
// the caller tensors fed to them, which must agree with each other and, for outputs the call
// does not feed, with `n`'s own group in the apply scope (tensorflow_hub's rule). Returns false
// when no output of `n` is an input; sets `error` (once) for groups that disagree.
bool InputColocation(const VariantIndex& index, const ApplyPlan& plan,
                     const ApplyGraphOptions& options, int n, const std::string& node_name,
                     std::vector<std::string>* groups, Status* error) {
  const std::string& target = index.node(n).name();
  const std::string own = kColocationPrefix + Join(options.scope, target);
  int outputs = NumOutputs(index, n);
  bool fed_any = false;
  for (const auto& [tensor, unused] : plan.inputs) {
    std::string name;
    int idx;
    ParseTensorName(tensor, &name, &idx);
    if (name != target) continue;
    fed_any = true;
    outputs = std::max(outputs, idx + 1);
  }
  if (!fed_any) return false;
  std::string first_reason;
  for (int i = 0; i < outputs; ++i) {
    const std::string tensor = TensorName(target, i);
    const std::string scoped = Join(options.scope, tensor);
    std::vector<std::string> mapped = {own};
    std::string reason = "tensor '" + scoped + "' is not substituted by inputs";
    if (plan.inputs.count(tensor)) {
      auto it = options.input_colocation.find(tensor);
      if (it != options.input_colocation.end()) mapped = it->second;
      reason = "input '" + scoped + "' is substituted by a tensor of the call";
    }
    if (i == 0) {
      *groups = mapped;
      first_reason = reason;
    } else if (mapped != *groups) {
      if (error->ok()) {
        *error = InvalidArgument(
            "Failed to rewrite colocation constraints while applying hub.Module:\nThe module "
            "graph contains a node '" +
            node_name + "' that has a colocation constraint b'" + own +
            "' with ambiguous rewriting " + GroupsText(*groups) + " vs " + GroupsText(mapped) +
            " because " + first_reason + " and " + reason +
            ", respectively.\nTo fix, avoid publishing a module with inputs comprising multiple "
            "outputs of one op that is referenced in tf.colocate_with(...) constraints on other "
            "ops.");
      }
      return true;
    }
  }
  return true;
}

// Apply step 2: the plan's nodes with names under the apply scope, inputs from state ops under
// the instance scope, and colocation with the state, the caller's inputs or the apply scope.
Status CopyApplyNodes(const VariantIndex& index, const ApplyPlan& plan,
                      const ApplyGraphOptions& options, ApplyGraph* out) {
  const auto& graph = index.meta->graph_def();
  const std::string& scope = options.scope;
  const std::string& state_scope = options.state_scope;

  auto rewrite_input = [&](const std::string& input) -> std::string {
    if (input[0] == '^') {
      const std::string name = input.substr(1);
      const int n = index.Find(name);
      return "^" + Join(n >= 0 && index.is_state[n] ? state_scope : scope, name);
    }
    std::string name;
    int idx;
    ParseTensorName(input, &name, &idx);
    const int n = index.Find(name);
    if (n >= 0 && index.is_state[n]) return Join(state_scope, TensorName(name, idx));
    if (plan.inputs.count(TensorName(name, idx))) return Join(scope, TensorName(name, idx));
    return Join(scope, input);
  };
  auto state_groups = [&](int n) {
    std::vector<std::string> groups;
    const auto& attrs = graph.node(n).attr();
    auto it = attrs.find(kColocationAttr);
    if (it != attrs.end()) {
      for (const auto& s : it->second.list().s()) {
        if (s.rfind(kColocationPrefix, 0) == 0) {
          groups.push_back(kColocationPrefix +
                           Join(state_scope, s.substr(sizeof(kColocationPrefix) - 1)));
        }
      }
    }
    if (groups.empty())
      groups.push_back(kColocationPrefix + Join(state_scope, graph.node(n).name()));
    return groups;
  };
  Status error;
  const tensorflow::NodeDef* current = nullptr;  // The node whose `_class` is being rewritten.
  auto map_colocation = [&](const std::string& target) -> std::vector<std::string> {
    const int n = index.Find(target);
    if (n < 0) return {};
    if (index.is_state[n]) return state_groups(n);
    std::vector<std::string> groups;
    if (!InputColocation(index, plan, options, n, current->name(), &groups, &error)) {
      if (plan.keep[n]) groups = {kColocationPrefix + Join(scope, target)};
    }
    return groups;
  };

  tensorflow::GraphDef result;
  CopyGraphHeader(graph, &result);
  if (result.has_library()) out->function_library = result.library().SerializeAsString();
  result.mutable_node()->Reserve(static_cast<int>(plan.nodes.size()));
  for (int n : plan.nodes) {
    tensorflow::NodeDef* node = result.add_node();
    *node = graph.node(n);
    node->mutable_attr()->erase(kOutputShapes);
    node->set_name(Join(scope, node->name()));
    for (auto& input : *node->mutable_input()) input = rewrite_input(input);
    PrefixSharedName(scope, node);
    current = node;
    RewriteColocation(node, map_colocation);
    HUBCORE_RETURN_IF_ERROR(error);
    if (node->attr().count(kColocationAttr)) out->colocated_nodes.push_back(node->name());
  }
  out->num_nodes = result.node_size();
  out->graph_def = result.SerializeAsString();
  return Status::OK();
}

// Apply step 3: the input-map keys, for the state tensors / ops and the signature inputs used.
void AddInputMap(const VariantIndex& index, const ApplyPlan& plan, const ApplyGraphOptions& options,
                 ApplyGraph* out) {
  const auto& graph = index.meta->graph_def();
  const std::string& scope = options.scope;
  const std::string& state_scope = options.state_scope;
  for (int n : plan.used_state) {
    InputMapping m;
    m.key = Join(state_scope, TensorName(graph.node(n).name(), 0));
    m.is_state = true;
    out->input_map.push_back(std::move(m));
  }
  for (int n : plan.control_state) {
    InputMapping m;
    m.key = "^" + Join(state_scope, graph.node(n).name());
    m.is_state = true;
    out->input_map.push_back(std::move(m));
  }
  for (const auto& tensor : plan.used_inputs) {
    InputMapping m;
    m.key = Join(scope, tensor);
    const auto& src = plan.inputs.at(tensor);
    m.input_key = src.first;
    m.component = src.second;
    out->input_map.push_back(std::move(m));
  }
}

// Apply step 4: where each signature output component comes from after the import.
void AddOutputRefs(const VariantIndex& index, const ApplyPlan& plan,
                   const ApplyGraphOptions& options, ApplyGraph* out) {
  const auto& graph = index.meta->graph_def();
  const std::string& scope = options.scope;
  const std::string& state_scope = options.state_scope;
  for (const auto& output : plan.signature->outputs) {
    auto& refs = out->outputs[output.key];
    for (const auto& name : output.tensor_names) {
      int idx;
      const int n = index.Find(name, &idx);
      std::string node_name;
      ParseTensorName(name, &node_name, &idx);
      OutputRef ref;
      auto in = plan.inputs.find(TensorName(node_name, idx));
      if (in != plan.inputs.end()) {
        ref.kind = OutputRef::kInput;
        ref.input_key = in->second.first;
        ref.component = in->second.second;
      } else if (n >= 0 && index.is_state[n]) {
        ref.kind = OutputRef::kState;
        ref.tensor = Join(state_scope, TensorName(node_name, idx));
      } else {
        ref.tensor = Join(scope, TensorName(node_name, idx));
      }
      refs.push_back(std::move(ref));
    }
  }
}

}  // namespace

Status GraphRewriter::BuildApplyGraph(const std::set<std::string>& tags,
                                      const std::string& signature,
                                      const ApplyGraphOptions& options, ApplyGraph* out) {
  const VariantIndex* index;
  const ApplyPlan* plan;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    HUBCORE_RETURN_IF_ERROR(impl_->GetIndex(*spec_, tags, &index));
    const SignatureInfo* sig = index->variant->FindSignature(signature);
    if (sig == nullptr) {
      return SignatureNotFound("Signature '" + signature + "' is missing from meta graph " +
                               index->variant->TagsToString());
    }
    const int variant = internal::FindMetaGraphIndex(spec_->data(), tags);
    auto& slot = impl_->plans[{variant, signature, options.trainable}];
    if (!slot) {
      auto fresh = std::make_unique<ApplyPlan>();
      HUBCORE_RETURN_IF_ERROR(BuildPlan(*index, *sig, options.trainable, fresh.get()));
      std::vector<const tensorflow::NodeDef*> nodes;
      for (int n : fresh->nodes) nodes.push_back(&index->node(n));
      HUBCORE_RETURN_IF_ERROR(internal::CheckOpsRegistered(
          nodes, index->meta->graph_def().library(), internal::ModuleWhere(*spec_, tags),
          "tf.load_op_library", options.scope));
      slot = std::move(fresh);
    }
    plan = slot.get();
  }
  HUBCORE_RETURN_IF_ERROR(CopyApplyNodes(*index, *plan, options, out));
  AddInputMap(*index, *plan, options, out);
  AddOutputRefs(*index, *plan, options, out);
  const auto& graph = index->meta->graph_def();
  for (const auto& name : plan->update_ops) out->update_ops.push_back(Join(options.scope, name));
  for (int n : index->asset_nodes) {
    out->asset_tensors.push_back(Join(options.scope, TensorName(graph.node(n).name(), 0)));
  }
  out->context_defs = plan->contexts;
  out->while_context_defs = plan->while_contexts;
  return Status::OK();
}

}  // namespace hubcore
