// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// GraphRewriter::BuildStateGraph: the state of one hub.Module instance (state ops, variables
// restored from the checkpoint or initialized, tables, assets, kept collections), every name
// under the instance scope.
#include <map>
#include <string>
#include <vector>

#include "graph_rewrite_impl.h"
#include "hubcore/graph_rewrite.h"
#include "tensorflow/core/framework/attr_value.pb.h"
#include "tensorflow/core/framework/tensor_shape.pb.h"
#include "tensorflow/core/framework/variable.pb.h"

namespace hubcore {
namespace {

using internal::CheckpointIndex;
using internal::Join;
using internal::kColocationAttr;
using internal::kColocationPrefix;
using internal::TensorName;
using internal::VariantIndex;
using VariableDefs = std::map<std::string, tensorflow::VariableDef>;  // By variable name.

// "loc:@X" -> "loc:@<scope>/X" for a kept node X; other targets are dropped.
struct StateColocation {
  const VariantIndex& index;
  const std::vector<char>& keep;
  const std::string& scope;
  std::vector<std::string> operator()(const std::string& target) const {
    const int n = index.Find(target);
    if (n < 0 || !keep[n]) return {};
    return {kColocationPrefix + Join(scope, target)};
  }
};

// Step 1: the VariableDefs of the collections `keys` (the first definition of a name wins).
Status CollectVariables(const VariantIndex& index, const std::vector<std::string>& keys,
                        const std::string& where, VariableDefs* variables) {
  for (const auto& key : keys) {
    const auto* coll = index.Collection(key);
    if (coll == nullptr) continue;
    for (const auto& bytes : coll->bytes_list().value()) {
      tensorflow::VariableDef def;
      if (!def.ParseFromString(bytes)) {
        return DataLoss(where + ": collection '" + key + "' holds a malformed VariableDef");
      }
      variables->emplace(def.variable_name(), def);
    }
  }
  return Status::OK();
}

// Step 2: marks what the state graph keeps: every state op, the variables (with their own
// initializers unless they are restored), the entries of the node-list collections `node_lists`
// (recorded, scoped, in `out`), and the v1 control-flow contexts touching them.
Status MarkStateNodes(const VariantIndex& index, const VariableDefs& variables, bool restore,
                      const std::vector<std::string>& node_lists, const std::string& scope,
                      const std::string& where, std::vector<char>* keep, StateGraph* out) {
  const auto& graph = index.meta->graph_def();
  std::vector<int> roots;
  for (int i = 0; i < graph.node_size(); ++i) {
    if (index.is_state[i]) roots.push_back(i);
  }
  auto add_root = [&](const std::string& name, const std::string& what) -> Status {
    if (name.empty()) return Status::OK();
    const int n = index.Find(name);
    if (n < 0) return DataLoss(where + ": " + what + " '" + name + "' is not in the graph");
    roots.push_back(n);
    return Status::OK();
  };
  for (const auto& [name, def] : variables) {
    HUBCORE_RETURN_IF_ERROR(add_root(def.variable_name(), "variable"));
    HUBCORE_RETURN_IF_ERROR(add_root(def.snapshot_name(), "variable snapshot"));
    if (!restore) {
      HUBCORE_RETURN_IF_ERROR(add_root(def.initializer_name(), "variable initializer"));
      HUBCORE_RETURN_IF_ERROR(add_root(def.initial_value_name(), "variable initial value"));
    }
  }
  for (const auto& key : node_lists) {
    const auto* coll = index.Collection(key);
    if (coll == nullptr) continue;
    for (const auto& name : coll->node_list().value()) {
      HUBCORE_RETURN_IF_ERROR(add_root(name, "collection '" + key + "' entry"));
      out->node_lists[key].push_back(Join(scope, name));
    }
  }
  keep->assign(graph.node_size(), 0);
  auto never_stop = [](int, int) { return false; };
  internal::Closure(index, roots, keep, never_stop);
  for (const char* key : {"cond_context", "while_context"}) {
    std::vector<int> extra;
    std::vector<std::string> defs;
    internal::CollectContexts(index, key, *keep, &defs, &extra);
    internal::Closure(index, extra, keep, never_stop);
    // Only names of the state graph, so that the contexts can be rebuilt in the instance scope.
    auto in_state_graph = [&](const std::string& tensor, std::string* mapped) {
      int idx;
      const int n = index.Find(tensor, &idx);
      if (n < 0 || !(*keep)[n]) return false;
      *mapped = TensorName(graph.node(n).name(), idx);
      return true;
    };
    std::vector<std::string> restricted;
    for (const auto& bytes : defs) {
      std::string def, missing;
      if (internal::RestrictContext(key, bytes, in_state_graph, &def, &missing)) {
        restricted.push_back(std::move(def));
      }
    }
    if (!restricted.empty()) out->bytes_lists[key] = std::move(restricted);
  }
  return Status::OK();
}

// Step 3: copies the kept nodes into `result` with scoped names, inputs, shared names and
// colocation.
void CopyScopedNodes(const VariantIndex& index, const std::vector<char>& keep,
                     const std::string& scope, tensorflow::GraphDef* result, StateGraph* out) {
  const auto& graph = index.meta->graph_def();
  const StateColocation colocation{index, keep, scope};
  for (int i = 0; i < graph.node_size(); ++i) {
    if (!keep[i]) continue;
    tensorflow::NodeDef* node = result->add_node();
    *node = graph.node(i);
    node->mutable_attr()->erase(internal::kOutputShapes);
    node->set_name(Join(scope, node->name()));
    for (auto& input : *node->mutable_input()) {
      input = input[0] == '^' ? "^" + Join(scope, input.substr(1)) : Join(scope, input);
    }
    internal::PrefixSharedName(scope, node);
    internal::RewriteColocation(node, colocation);
    if (node->attr().count(kColocationAttr)) out->colocated_nodes.push_back(node->name());
  }
}

// Step 4: one RestoreV2 for the whole instance (one pass over the checkpoint, like a Saver) and
// one assign per variable or partition, which becomes that variable's initializer.
Status AddCheckpointInitializers(const VariantIndex& index, const CheckpointIndex& checkpoint,
                                 const std::string& checkpoint_prefix, const std::string& scope,
                                 const std::string& where, const std::vector<char>& keep,
                                 VariableDefs* variables, tensorflow::GraphDef* result,
                                 StateGraph* out) {
  const auto& graph = index.meta->graph_def();
  std::vector<internal::RestoreTarget> targets;
  std::vector<const tensorflow::NodeDef*> variable_nodes;
  for (const auto& [name, def] : *variables) {
    const auto& node = graph.node(index.Find(def.variable_name()));
    auto dtype = node.attr().find("dtype");
    if (dtype == node.attr().end()) {
      return DataLoss(where + ": variable '" + node.name() + "' has no dtype");
    }
    internal::RestoreTarget target;
    target.variable = Join(scope, node.name());
    target.resource = node.op() == "VarHandleOp";
    target.dtype = dtype->second.type();
    target.checkpoint_key = node.name();
    if (def.has_save_slice_info_def()) {
      const auto& slice = def.save_slice_info_def();
      target.checkpoint_key = slice.full_name();
      target.shape.assign(slice.full_shape().begin(), slice.full_shape().end());
      target.sliced = true;
      target.slice =
          internal::SliceSpec(target.shape, {slice.var_offset().begin(), slice.var_offset().end()},
                              {slice.var_shape().begin(), slice.var_shape().end()});
    } else if (auto s = node.attr().find("shape"); s != node.attr().end()) {
      if (!s->second.shape().unknown_rank()) {
        for (const auto& d : s->second.shape().dim()) target.shape.push_back(d.size());
      }
    }
    target.assign_name = target.variable + "/checkpoint_initializer";
    targets.push_back(std::move(target));
    variable_nodes.push_back(&node);
  }
  // Messages name the module-relative variable, as the module's author knows it.
  std::vector<internal::RestoreTarget> unscoped = targets;
  for (size_t i = 0; i < unscoped.size(); ++i) unscoped[i].variable = variable_nodes[i]->name();
  HUBCORE_RETURN_IF_ERROR(
      internal::CheckRestoreTargets(unscoped, checkpoint, checkpoint_prefix, where));

  const std::string restore_name = Join(scope, "checkpoint_initializer");
  const auto assigns = internal::AddRestoreOps(restore_name, checkpoint_prefix, targets, result);
  const StateColocation colocation{index, keep, scope};
  size_t i = 0;
  for (auto& [name, def] : *variables) {
    tensorflow::NodeDef* assign = assigns[i];
    const auto& attrs = variable_nodes[i]->attr();
    if (auto c = attrs.find(kColocationAttr); c != attrs.end()) {
      // Keep the assign with its variable, like the original initializer.
      tensorflow::NodeDef tmp;
      (*tmp.mutable_attr())[kColocationAttr] = c->second;
      internal::RewriteColocation(&tmp, colocation);
      if (tmp.attr().count(kColocationAttr)) {
        (*assign->mutable_attr())[kColocationAttr] = tmp.attr().at(kColocationAttr);
        out->colocated_nodes.push_back(assign->name());
      }
    }
    def.set_initializer_name(assign->name());
    def.set_initial_value_name(restore_name + ":" + std::to_string(i));
    ++i;
  }
  return Status::OK();
}

// Step 5: the variable collections `keys` as VariableDefs with scoped names (restored
// variables already name their scoped checkpoint initializer).
Status AddVariableDefs(const VariantIndex& index, const std::vector<std::string>& keys,
                       const VariableDefs& variables, const std::string& scope, bool restored,
                       StateGraph* out) {
  auto scoped_def = [&](tensorflow::VariableDef def) {
    def.set_variable_name(Join(scope, def.variable_name()));
    if (!def.initializer_name().empty() && !restored) {
      def.set_initializer_name(Join(scope, def.initializer_name()));
    }
    if (!def.snapshot_name().empty()) def.set_snapshot_name(Join(scope, def.snapshot_name()));
    if (!def.initial_value_name().empty() && !restored) {
      def.set_initial_value_name(Join(scope, def.initial_value_name()));
    }
    if (def.has_save_slice_info_def()) {
      auto* slice = def.mutable_save_slice_info_def();
      slice->set_full_name(Join(scope, slice->full_name()));
    }
    return def.SerializeAsString();
  };
  for (const auto& key : keys) {
    const auto* coll = index.Collection(key);
    if (coll == nullptr) continue;
    auto& list = out->bytes_lists[key];
    for (const auto& bytes : coll->bytes_list().value()) {
      tensorflow::VariableDef def;
      auto it = def.ParseFromString(bytes) ? variables.find(def.variable_name()) : variables.end();
      if (it == variables.end()) {
        // E.g. a trainable_variables entry that the variables collection does not list.
        return DataLoss("collection '" + key + "' names variable '" + def.variable_name() +
                        "', which the module's 'variables' collection does not define");
      }
      list.push_back(scoped_def(it->second));
    }
  }
  return Status::OK();
}

}  // namespace

Status GraphRewriter::BuildStateGraph(const std::set<std::string>& tags,
                                      const StateGraphOptions& options, StateGraph* out) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const VariantIndex* index;
  HUBCORE_RETURN_IF_ERROR(impl_->GetIndex(*spec_, tags, &index));
  const std::string& scope = options.scope;
  const std::string where = "graph variant " + index->variant->TagsToString();

  std::vector<std::string> variable_keys = {"variables", "model_variables"};
  std::vector<std::string> node_list_keys = {"table_initializer", "asset_filepaths"};
  if (options.trainable) {
    variable_keys.push_back("trainable_variables");
    node_list_keys.push_back("regularization_losses");
  }
  VariableDefs variables;
  HUBCORE_RETURN_IF_ERROR(CollectVariables(*index, variable_keys, where, &variables));
  const bool restore = !options.checkpoint_prefix.empty() && !variables.empty();

  std::vector<char> keep;
  HUBCORE_RETURN_IF_ERROR(MarkStateNodes(*index, variables, !options.checkpoint_prefix.empty(),
                                         node_list_keys, scope, where, &keep, out));

  const internal::CheckpointIndex* checkpoint = nullptr;
  if (restore) {
    auto it = impl_->checkpoints.find(options.checkpoint_prefix);
    if (it == impl_->checkpoints.end()) {
      std::vector<CheckpointEntry> entries;
      if (options.checkpoint_prefix == spec_->checkpoint_prefix()) {
        entries = spec_->checkpoint_entries();
      } else {
        HUBCORE_RETURN_IF_ERROR(
            internal::ReadCheckpointEntries(options.checkpoint_prefix, &entries));
      }
      it = impl_->checkpoints.emplace(options.checkpoint_prefix, internal::IndexCheckpoint(entries))
               .first;
    }
    checkpoint = &it->second;
  }

  {
    std::vector<const tensorflow::NodeDef*> nodes;
    for (int n = 0; n < static_cast<int>(keep.size()); ++n) {
      if (keep[n]) nodes.push_back(&index->node(n));
    }
    HUBCORE_RETURN_IF_ERROR(internal::CheckOpsRegistered(nodes, index->meta->graph_def().library(),
                                                         internal::ModuleWhere(*spec_, tags),
                                                         "tf.load_op_library", scope));
  }

  tensorflow::GraphDef result;
  internal::CopyGraphHeader(index->meta->graph_def(), &result);
  if (result.has_library()) out->function_library = result.library().SerializeAsString();
  CopyScopedNodes(*index, keep, scope, &result, out);
  if (restore) {
    HUBCORE_RETURN_IF_ERROR(AddCheckpointInitializers(*index, *checkpoint,
                                                      options.checkpoint_prefix, scope, where, keep,
                                                      &variables, &result, out));
  }
  HUBCORE_RETURN_IF_ERROR(AddVariableDefs(*index, variable_keys, variables, scope, restore, out));
  out->num_nodes = result.node_size();
  out->graph_def = result.SerializeAsString();
  return Status::OK();
}

}  // namespace hubcore
