// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// State and apply graphs for hub.Module instances (see hubcore/graph_rewrite.h).
#include "hubcore/graph_rewrite.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "module_spec_data.h"
#include "tensorflow/core/framework/attr_value.pb.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_def.pb.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/framework/tensor_shape.pb.h"
#include "tensorflow/core/framework/variable.pb.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/protobuf/control_flow.pb.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"

namespace hubcore {
namespace {

using internal::ParseTensorName;

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

std::string Join(const std::string& scope, const std::string& name) {
  return scope.empty() ? name : scope + "/" + name;
}

std::string TensorName(const std::string& node, int index) {
  return node + ":" + std::to_string(index);
}

// Number of outputs of `node` according to `op_def` (list outputs resolved from attributes).
int CountOutputs(const tensorflow::NodeDef& node, const tensorflow::OpDef& op_def) {
  auto attr_or_default = [&](const std::string& name) -> const tensorflow::AttrValue* {
    auto it = node.attr().find(name);
    if (it != node.attr().end()) return &it->second;
    for (const auto& a : op_def.attr()) {
      if (a.name() == name && a.has_default_value()) return &a.default_value();
    }
    return nullptr;
  };
  int n = 0;
  for (const auto& arg : op_def.output_arg()) {
    if (!arg.number_attr().empty()) {
      const auto* v = attr_or_default(arg.number_attr());
      n += v ? static_cast<int>(v->i()) : 1;
    } else if (!arg.type_list_attr().empty()) {
      const auto* v = attr_or_default(arg.type_list_attr());
      n += v ? v->list().type_size() : 1;
    } else {
      n += 1;
    }
  }
  return n;
}

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

Status BuildIndex(const tensorflow::MetaGraphDef& meta, const GraphVariant& variant,
                  VariantIndex* index) {
  index->meta = &meta;
  index->variant = &variant;
  const auto& nodes = meta.graph_def().node();
  const std::string where = "graph variant " + variant.TagsToString();
  index->node_index.reserve(nodes.size());
  for (int i = 0; i < nodes.size(); ++i) index->node_index[nodes[i].name()] = i;

  std::unordered_map<std::string, const tensorflow::OpDef*> stripped;
  for (const auto& op : meta.meta_info_def().stripped_op_list().op()) stripped[op.name()] = &op;
  // Per op type: is it a state op type? (stateful, no inputs)
  std::unordered_map<std::string, const tensorflow::OpDef*> state_types;
  std::unordered_set<std::string> non_state_types;

  index->inputs.resize(nodes.size());
  index->is_state.assign(nodes.size(), 0);
  for (int i = 0; i < nodes.size(); ++i) {
    const auto& node = nodes[i];
    auto& edges = index->inputs[i];
    edges.reserve(node.input_size());
    for (const auto& input : node.input()) {
      std::string name;
      int idx;
      ParseTensorName(input, &name, &idx);
      auto it = index->node_index.find(name);
      if (it == index->node_index.end()) {
        return DataLoss(where + ": node '" + node.name() + "' has an unknown input '" + input +
                        "'");
      }
      edges.push_back({it->second, idx});
    }
    const std::string& type = node.op();
    if (non_state_types.count(type)) continue;
    const tensorflow::OpDef* op_def = nullptr;
    auto st = state_types.find(type);
    if (st != state_types.end()) {
      op_def = st->second;
    } else {
      auto sit = stripped.find(type);
      if (sit != stripped.end()) {
        op_def = sit->second;
      } else {
        const tensorflow::OpRegistrationData* data = nullptr;
        if (tensorflow::OpRegistry::Global()->LookUp(type, &data).ok() && data) {
          op_def = &data->op_def;
        }
      }
      if (op_def == nullptr || !op_def->is_stateful() || op_def->input_arg_size() != 0) {
        non_state_types.insert(type);
        continue;
      }
      state_types[type] = op_def;
    }
    index->is_state[i] = 1;
    const int outputs = CountOutputs(node, *op_def);
    if (outputs != 1 && index->error.ok()) {
      index->error = DataLoss("Stateful op " + node.name() + " (" + type + ") has " +
                              std::to_string(outputs) + " outputs, expected 1");
    }
  }
  if (const auto* assets = index->Collection("asset_filepaths")) {
    for (const auto& name : assets->node_list().value()) {
      const int n = index->Find(name);
      if (n < 0) return DataLoss(where + ": asset tensor '" + name + "' is not in the graph");
      index->asset_nodes.push_back(n);
    }
  }
  return Status::OK();
}

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

tensorflow::NodeDef MakeStringConst(const std::string& name, const std::string& value,
                                    bool vector) {
  tensorflow::NodeDef node;
  node.set_name(name);
  node.set_op("Const");
  (*node.mutable_attr())["dtype"].set_type(tensorflow::DT_STRING);
  auto* tensor = (*node.mutable_attr())["value"].mutable_tensor();
  tensor->set_dtype(tensorflow::DT_STRING);
  if (vector) tensor->mutable_tensor_shape()->add_dim()->set_size(1);
  tensor->add_string_val(value);
  return node;
}

std::string SliceSpec(const tensorflow::SaveSliceInfoDef& slice) {
  std::string spec;
  for (int64_t d : slice.full_shape()) spec += std::to_string(d) + " ";
  for (int i = 0; i < slice.var_offset_size(); ++i) {
    if (i) spec += ":";
    spec += std::to_string(slice.var_offset(i)) + "," + std::to_string(slice.var_shape(i));
  }
  return spec;
}

void PrefixSharedName(const std::string& scope, tensorflow::NodeDef* node) {
  auto it = node->mutable_attr()->find(kSharedName);
  if (it != node->mutable_attr()->end() && it->second.value_case() == tensorflow::AttrValue::kS &&
      !it->second.s().empty()) {
    it->second.set_s(Join(scope, it->second.s()));
  }
}

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

void CopyGraphHeader(const tensorflow::GraphDef& from, tensorflow::GraphDef* to) {
  *to->mutable_versions() = from.versions();
  if (from.library().function_size() > 0 || from.library().gradient_size() > 0) {
    *to->mutable_library() = from.library();
  }
}

// Serialized CondContextDef / WhileContextDef entries whose values touch a kept node; their
// own tensors are added to `extra_roots`.
void CollectContexts(const VariantIndex& index, const std::string& key,
                     const std::vector<char>& keep, std::vector<std::string>* out,
                     std::vector<int>* extra_roots) {
  const auto* coll = index.Collection(key);
  if (coll == nullptr || !coll->has_bytes_list()) return;
  for (const auto& bytes : coll->bytes_list().value()) {
    tensorflow::ValuesDef values;
    std::vector<std::string> names;
    if (key == "cond_context") {
      tensorflow::CondContextDef def;
      if (!def.ParseFromString(bytes)) continue;
      values = def.values_def();
      names = {def.pred_name(), def.pivot_name()};
    } else {
      tensorflow::WhileContextDef def;
      if (!def.ParseFromString(bytes)) continue;
      values = def.values_def();
      names = {def.pivot_name(), def.pivot_for_pred_name(), def.pivot_for_body_name()};
      for (const auto& n : def.loop_exit_names()) names.push_back(n);
      for (const auto& n : def.loop_enter_names()) names.push_back(n);
    }
    bool referenced = false;
    for (const auto& v : values.values()) {
      const int n = index.Find(v);
      if (n >= 0 && keep[n]) referenced = true;
    }
    if (!referenced) continue;
    out->push_back(bytes);
    for (const auto& v : values.values()) names.push_back(v);
    for (const auto& name : names) {
      const int n = name.empty() ? -1 : index.Find(name);
      if (n >= 0 && !keep[n]) extra_roots->push_back(n);
    }
  }
}

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

}  // namespace

struct GraphRewriter::Impl {
  std::mutex mu;
  std::map<int, std::unique_ptr<VariantIndex>> indexes;  // By meta graph index.
  std::map<std::tuple<int, std::string, bool>, std::unique_ptr<ApplyPlan>> plans;
  std::map<std::string, std::unordered_map<std::string, std::vector<int64_t>>> checkpoints;
};

GraphRewriter::GraphRewriter(std::shared_ptr<const ModuleSpec> spec)
    : spec_(std::move(spec)), impl_(std::make_unique<Impl>()) {}
GraphRewriter::~GraphRewriter() = default;

namespace {

Status GetIndex(const ModuleSpec& spec, std::map<int, std::unique_ptr<VariantIndex>>* cache,
                const std::set<std::string>& tags, const VariantIndex** out) {
  const auto& data = spec.data();
  const int i = internal::FindMetaGraphIndex(data, tags);
  if (i < 0) {
    GraphVariant tmp;
    tmp.tags = tags;
    return InvalidArgument("No such graph variant: tags=" + tmp.TagsToString());
  }
  auto& slot = (*cache)[i];
  if (!slot) {
    auto index = std::make_unique<VariantIndex>();
    HUBCORE_RETURN_IF_ERROR(
        BuildIndex(data.saved_model.meta_graphs(i), data.variants[i], index.get()));
    slot = std::move(index);
  }
  HUBCORE_RETURN_IF_ERROR(slot->error);
  *out = slot.get();
  return Status::OK();
}

}  // namespace

Status GraphRewriter::BuildStateGraph(const std::set<std::string>& tags,
                                      const StateGraphOptions& options, StateGraph* out) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const VariantIndex* index;
  HUBCORE_RETURN_IF_ERROR(GetIndex(*spec_, &impl_->indexes, tags, &index));
  const auto& graph = index->meta->graph_def();
  const std::string& scope = options.scope;
  const bool restore = !options.checkpoint_prefix.empty();
  const std::string where = "graph variant " + index->variant->TagsToString();

  // Variables of the kept collections, by variable name (first definition wins).
  std::vector<std::string> variable_keys = {"variables", "model_variables"};
  if (options.trainable) variable_keys.push_back("trainable_variables");
  std::map<std::string, tensorflow::VariableDef> variables;
  std::vector<std::string> variable_order;
  for (const auto& key : variable_keys) {
    const auto* coll = index->Collection(key);
    if (coll == nullptr) continue;
    for (const auto& bytes : coll->bytes_list().value()) {
      tensorflow::VariableDef def;
      if (!def.ParseFromString(bytes)) {
        return DataLoss(where + ": collection '" + key + "' holds a malformed VariableDef");
      }
      if (variables.emplace(def.variable_name(), def).second) {
        variable_order.push_back(def.variable_name());
      }
    }
  }

  std::vector<int> roots;
  for (int i = 0; i < graph.node_size(); ++i) {
    if (index->is_state[i]) roots.push_back(i);
  }
  auto add_root = [&](const std::string& name, const std::string& what) -> Status {
    if (name.empty()) return Status::OK();
    const int n = index->Find(name);
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
  std::vector<std::string> node_list_keys = {"table_initializer", "asset_filepaths"};
  if (options.trainable) node_list_keys.push_back("regularization_losses");
  for (const auto& key : node_list_keys) {
    const auto* coll = index->Collection(key);
    if (coll == nullptr) continue;
    for (const auto& name : coll->node_list().value()) {
      HUBCORE_RETURN_IF_ERROR(add_root(name, "collection '" + key + "' entry"));
      out->node_lists[key].push_back(Join(scope, name));
    }
  }

  std::vector<char> keep(graph.node_size(), 0);
  auto never_stop = [](int, int) { return false; };
  Closure(*index, roots, &keep, never_stop);
  for (const char* key : {"cond_context", "while_context"}) {
    std::vector<int> extra;
    std::vector<std::string> defs;
    CollectContexts(*index, key, keep, &defs, &extra);
    Closure(*index, extra, &keep, never_stop);
    if (!defs.empty()) out->bytes_lists[key] = std::move(defs);
  }

  // Checkpoint restore: per variable (or partition), RestoreV2 + assign.
  std::unordered_map<std::string, std::vector<int64_t>>* ckpt = nullptr;
  if (restore && !variables.empty()) {
    auto it = impl_->checkpoints.find(options.checkpoint_prefix);
    if (it == impl_->checkpoints.end()) {
      std::vector<CheckpointEntry> entries;
      if (options.checkpoint_prefix == spec_->checkpoint_prefix()) {
        entries = spec_->checkpoint_entries();
      } else {
        HUBCORE_RETURN_IF_ERROR(
            internal::ReadCheckpointEntries(options.checkpoint_prefix, &entries));
      }
      std::unordered_map<std::string, std::vector<int64_t>> shapes;
      for (auto& e : entries) shapes[e.key] = std::move(e.shape);
      it = impl_->checkpoints.emplace(options.checkpoint_prefix, std::move(shapes)).first;
    }
    ckpt = &it->second;
  }

  tensorflow::GraphDef result;
  CopyGraphHeader(graph, &result);
  if (result.has_library()) out->function_library = result.library().SerializeAsString();
  auto map_colocation = [&](const std::string& target) -> std::vector<std::string> {
    const int n = index->Find(target);
    if (n < 0 || !keep[n]) return {};
    return {kColocationPrefix + Join(scope, target)};
  };
  for (int i = 0; i < graph.node_size(); ++i) {
    if (!keep[i]) continue;
    tensorflow::NodeDef* node = result.add_node();
    *node = graph.node(i);
    node->mutable_attr()->erase(kOutputShapes);
    node->set_name(Join(scope, node->name()));
    for (auto& input : *node->mutable_input()) {
      input = input[0] == '^' ? "^" + Join(scope, input.substr(1)) : Join(scope, input);
    }
    PrefixSharedName(scope, node);
    RewriteColocation(node, map_colocation);
    if (node->attr().count(kColocationAttr)) out->colocated_nodes.push_back(node->name());
  }

  if (ckpt != nullptr) {
    const std::string restore_node = Join(scope, "checkpoint_initializer");
    const std::string prefix_node = restore_node + "/prefix";
    *result.add_node() = MakeStringConst(prefix_node, options.checkpoint_prefix, false);
    struct Restore {
      tensorflow::VariableDef* def;
      const tensorflow::NodeDef* node;
      std::string key, slice;
      tensorflow::DataType dtype;
    };
    std::vector<Restore> restores;
    for (auto& [name, def] : variables) {
      const int var = index->Find(def.variable_name());
      const auto& var_node = graph.node(var);
      auto dtype_it = var_node.attr().find("dtype");
      if (dtype_it == var_node.attr().end()) {
        return DataLoss(where + ": variable '" + var_node.name() + "' has no dtype");
      }
      std::string key = var_node.name();
      std::string slice;
      std::vector<int64_t> expected;
      if (def.has_save_slice_info_def()) {
        key = def.save_slice_info_def().full_name();
        slice = SliceSpec(def.save_slice_info_def());
        expected.assign(def.save_slice_info_def().full_shape().begin(),
                        def.save_slice_info_def().full_shape().end());
      } else if (auto s = var_node.attr().find("shape"); s != var_node.attr().end()) {
        if (!s->second.shape().unknown_rank()) {
          for (const auto& d : s->second.shape().dim()) expected.push_back(d.size());
        }
      }
      auto entry = ckpt->find(key);
      if (entry == ckpt->end()) {
        return DataLoss("Tensor " + key + " is not found in " + options.checkpoint_prefix +
                        " checkpoint (needed by variable '" + var_node.name() + "' of " + where +
                        ")");
      }
      bool shape_ok = expected.size() == entry->second.size() ||
                      (expected.empty() && !def.has_save_slice_info_def());
      for (size_t d = 0; shape_ok && d < expected.size(); ++d) {
        shape_ok = expected[d] < 0 || expected[d] == entry->second[d];
      }
      if (!shape_ok) {
        std::string want, got;
        for (auto d : expected) want += std::to_string(d) + ",";
        for (auto d : entry->second) got += std::to_string(d) + ",";
        return DataLoss("Shape of variable '" + var_node.name() + "' ([" + want +
                        "]) does not match the checkpoint entry '" + key + "' ([" + got + "]) in " +
                        options.checkpoint_prefix);
      }
      restores.push_back({&def, &var_node, key, slice, dtype_it->second.type()});
    }
    // One RestoreV2 for the whole instance (one pass over the checkpoint, like a Saver), and one
    // assign per variable or partition, which is what the variable's initializer runs.
    tensorflow::NodeDef names = MakeStringConst(restore_node + "/tensor_names", "", true);
    tensorflow::NodeDef slices = MakeStringConst(restore_node + "/shape_and_slices", "", true);
    for (auto* c : {&names, &slices}) {
      auto* tensor = (*c->mutable_attr())["value"].mutable_tensor();
      tensor->clear_string_val();
      tensor->mutable_tensor_shape()->mutable_dim(0)->set_size(
          static_cast<int64_t>(restores.size()));
    }
    tensorflow::NodeDef* restore_op = result.add_node();
    restore_op->set_name(restore_node);
    restore_op->set_op("RestoreV2");
    restore_op->set_device("/device:CPU:0");
    restore_op->add_input(prefix_node);
    restore_op->add_input(names.name());
    restore_op->add_input(slices.name());
    auto* dtypes = (*restore_op->mutable_attr())["dtypes"].mutable_list();
    for (size_t i = 0; i < restores.size(); ++i) {
      const Restore& r = restores[i];
      (*names.mutable_attr())["value"].mutable_tensor()->add_string_val(r.key);
      (*slices.mutable_attr())["value"].mutable_tensor()->add_string_val(r.slice);
      dtypes->add_type(r.dtype);
      const std::string output = restore_node + ":" + std::to_string(i);
      tensorflow::NodeDef* assign = result.add_node();
      assign->set_name(Join(scope, r.node->name()) + "/checkpoint_initializer");
      assign->add_input(Join(scope, r.node->name()));
      assign->add_input(output);
      if (r.node->op() == "VarHandleOp") {
        assign->set_op("AssignVariableOp");
        (*assign->mutable_attr())["dtype"].set_type(r.dtype);
      } else {
        assign->set_op("Assign");
        (*assign->mutable_attr())["T"].set_type(r.dtype);
        (*assign->mutable_attr())["validate_shape"].set_b(true);
        (*assign->mutable_attr())["use_locking"].set_b(true);
      }
      if (auto c = r.node->attr().find(kColocationAttr); c != r.node->attr().end()) {
        // Keep the assign with its variable, like the original initializer.
        tensorflow::NodeDef tmp;
        (*tmp.mutable_attr())[kColocationAttr] = c->second;
        RewriteColocation(&tmp, map_colocation);
        if (tmp.attr().count(kColocationAttr)) {
          (*assign->mutable_attr())[kColocationAttr] = tmp.attr().at(kColocationAttr);
          out->colocated_nodes.push_back(assign->name());
        }
      }
      r.def->set_initializer_name(assign->name());
      r.def->set_initial_value_name(output);
    }
    *result.add_node() = std::move(names);
    *result.add_node() = std::move(slices);
  }

  // VariableDefs with scoped names.
  auto scoped_def = [&](tensorflow::VariableDef def) {
    def.set_variable_name(Join(scope, def.variable_name()));
    if (!def.initializer_name().empty() && !ckpt) {
      def.set_initializer_name(Join(scope, def.initializer_name()));
    }
    if (!def.snapshot_name().empty()) def.set_snapshot_name(Join(scope, def.snapshot_name()));
    if (!def.initial_value_name().empty() && !ckpt) {
      def.set_initial_value_name(Join(scope, def.initial_value_name()));
    }
    if (def.has_save_slice_info_def()) {
      auto* slice = def.mutable_save_slice_info_def();
      slice->set_full_name(Join(scope, slice->full_name()));
    }
    return def.SerializeAsString();
  };
  for (const auto& key : variable_keys) {
    const auto* coll = index->Collection(key);
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
  out->num_nodes = result.node_size();
  out->graph_def = result.SerializeAsString();
  return Status::OK();
}

namespace {

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
    if (const auto* coll = index.Collection("update_ops")) {
      // Nodes that depend on a signature input: forward reachability from the input tensors.
      std::vector<std::vector<int>> consumers(graph.node_size());
      std::vector<char> depends(graph.node_size(), 0);
      std::vector<int> queue;
      for (int n = 0; n < graph.node_size(); ++n) {
        for (const Edge& e : index.inputs[n]) {
          consumers[e.node].push_back(n);
          if (!depends[n] && is_input(e.node, e.index)) {
            depends[n] = 1;
            queue.push_back(n);
          }
        }
      }
      while (!queue.empty()) {
        const int n = queue.back();
        queue.pop_back();
        for (int c : consumers[n]) {
          if (!depends[c]) {
            depends[c] = 1;
            queue.push_back(c);
          }
        }
      }
      for (const auto& name : coll->node_list().value()) {
        const int root = index.Find(name);
        if (root < 0) return DataLoss(where + ": update op '" + name + "' is not in the graph");
        if (depends[root]) {
          plan->update_ops.push_back(name);
          roots.push_back(root);
        }
      }
    }
  }

  plan->keep.assign(graph.node_size(), 0);
  Closure(index, roots, &plan->keep, stop);
  {
    std::vector<int> extra;
    CollectContexts(index, "cond_context", plan->keep, &plan->contexts, &extra);
    CollectContexts(index, "while_context", plan->keep, &plan->while_contexts, &extra);
    std::vector<int> filtered;
    for (int n : extra) {
      if (!index.is_state[n]) filtered.push_back(n);
    }
    Closure(index, filtered, &plan->keep, stop);
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

}  // namespace

Status GraphRewriter::BuildApplyGraph(const std::set<std::string>& tags,
                                      const std::string& signature,
                                      const ApplyGraphOptions& options, ApplyGraph* out) {
  const VariantIndex* index;
  const ApplyPlan* plan;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    HUBCORE_RETURN_IF_ERROR(GetIndex(*spec_, &impl_->indexes, tags, &index));
    const SignatureInfo* sig = index->variant->FindSignature(signature);
    if (sig == nullptr) {
      return InvalidArgument("Signature '" + signature + "' is missing from meta graph " +
                             index->variant->TagsToString());
    }
    const int variant = internal::FindMetaGraphIndex(spec_->data(), tags);
    auto& slot = impl_->plans[{variant, signature, options.trainable}];
    if (!slot) {
      auto fresh = std::make_unique<ApplyPlan>();
      HUBCORE_RETURN_IF_ERROR(BuildPlan(*index, *sig, options.trainable, fresh.get()));
      slot = std::move(fresh);
    }
    plan = slot.get();
  }
  const auto& graph = index->meta->graph_def();
  const std::string& scope = options.scope;
  const std::string& state_scope = options.state_scope;

  auto rewrite_input = [&](const std::string& input) -> std::string {
    if (input[0] == '^') {
      const std::string name = input.substr(1);
      const int n = index->Find(name);
      return "^" + Join(n >= 0 && index->is_state[n] ? state_scope : scope, name);
    }
    std::string name;
    int idx;
    ParseTensorName(input, &name, &idx);
    const int n = index->Find(name);
    if (n >= 0 && index->is_state[n]) return Join(state_scope, TensorName(name, idx));
    if (plan->inputs.count(TensorName(name, idx))) return Join(scope, TensorName(name, idx));
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
  auto map_colocation = [&](const std::string& target) -> std::vector<std::string> {
    const int n = index->Find(target);
    if (n < 0) return {};
    if (index->is_state[n]) return state_groups(n);
    auto it = options.input_colocation.find(target);
    if (it != options.input_colocation.end()) return it->second;
    if (plan->keep[n]) return {kColocationPrefix + Join(scope, target)};
    return {};
  };

  tensorflow::GraphDef result;
  CopyGraphHeader(graph, &result);
  if (result.has_library()) out->function_library = result.library().SerializeAsString();
  result.mutable_node()->Reserve(static_cast<int>(plan->nodes.size()));
  for (int n : plan->nodes) {
    tensorflow::NodeDef* node = result.add_node();
    *node = graph.node(n);
    node->mutable_attr()->erase(kOutputShapes);
    node->set_name(Join(scope, node->name()));
    for (auto& input : *node->mutable_input()) input = rewrite_input(input);
    PrefixSharedName(scope, node);
    RewriteColocation(node, map_colocation);
    if (node->attr().count(kColocationAttr)) out->colocated_nodes.push_back(node->name());
  }
  out->num_nodes = result.node_size();
  out->graph_def = result.SerializeAsString();

  for (int n : plan->used_state) {
    InputMapping m;
    m.key = Join(state_scope, TensorName(graph.node(n).name(), 0));
    m.is_state = true;
    out->input_map.push_back(std::move(m));
  }
  for (int n : plan->control_state) {
    InputMapping m;
    m.key = "^" + Join(state_scope, graph.node(n).name());
    m.is_state = true;
    out->input_map.push_back(std::move(m));
  }
  for (const auto& tensor : plan->used_inputs) {
    InputMapping m;
    m.key = Join(scope, tensor);
    const auto& src = plan->inputs.at(tensor);
    m.input_key = src.first;
    m.component = src.second;
    out->input_map.push_back(std::move(m));
  }
  for (const auto& output : plan->signature->outputs) {
    auto& refs = out->outputs[output.key];
    for (const auto& name : output.tensor_names) {
      int idx;
      const int n = index->Find(name, &idx);
      std::string node_name;
      ParseTensorName(name, &node_name, &idx);
      OutputRef ref;
      auto in = plan->inputs.find(TensorName(node_name, idx));
      if (in != plan->inputs.end()) {
        ref.kind = OutputRef::kInput;
        ref.input_key = in->second.first;
        ref.component = in->second.second;
      } else if (n >= 0 && index->is_state[n]) {
        ref.kind = OutputRef::kState;
        ref.tensor = Join(state_scope, TensorName(node_name, idx));
      } else {
        ref.tensor = Join(scope, TensorName(node_name, idx));
      }
      refs.push_back(std::move(ref));
    }
  }
  for (const auto& name : plan->update_ops) out->update_ops.push_back(Join(scope, name));
  for (int n : index->asset_nodes) {
    out->asset_tensors.push_back(Join(scope, TensorName(graph.node(n).name(), 0)));
  }
  out->context_defs = plan->contexts;
  out->while_context_defs = plan->while_contexts;
  return Status::OK();
}

}  // namespace hubcore
