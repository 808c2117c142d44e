// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
#include "variant_index.h"

#include <unordered_set>

#include "tensorflow/core/framework/attr_value.pb.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_def.pb.h"
#include "tensorflow/core/protobuf/control_flow.pb.h"

namespace hubcore::internal {
namespace {

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

}  // namespace

int NumOutputs(const VariantIndex& index, int node) {
  const tensorflow::NodeDef& def = index.node(node);
  for (const auto& op : index.meta->meta_info_def().stripped_op_list().op()) {
    if (op.name() == def.op()) return CountOutputs(def, op);
  }
  const tensorflow::OpRegistrationData* data = nullptr;
  if (tensorflow::OpRegistry::Global()->LookUp(def.op(), &data).ok() && data) {
    return CountOutputs(def, data->op_def);
  }
  return -1;
}

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

namespace {

void SummarizeValues(const tensorflow::ValuesDef& values, ContextSummary* out) {
  for (const auto& v : values.values()) {
    out->tensors.push_back(v);
    if (!values.external_values().count(v)) {
      std::string node;
      int idx;
      ParseTensorName(v, &node, &idx);
      out->owned_ops.push_back(node);
    }
  }
  for (const auto& [key, value] : values.external_values()) {
    out->tensors.push_back(key);
    out->tensors.push_back(value);
  }
}

void Summarize(const tensorflow::CondContextDef& def, ContextSummary* out);
void Summarize(const tensorflow::WhileContextDef& def, ContextSummary* out);

void SummarizeNested(
    const google::protobuf::RepeatedPtrField<tensorflow::ControlFlowContextDef>& nested,
    ContextSummary* out) {
  for (const auto& n : nested) {
    if (n.has_cond_ctxt()) Summarize(n.cond_ctxt(), out);
    if (n.has_while_ctxt()) {
      out->has_nested_while = true;
      Summarize(n.while_ctxt(), out);
    }
  }
}

void Summarize(const tensorflow::CondContextDef& def, ContextSummary* out) {
  out->tensors.push_back(def.pred_name());
  out->tensors.push_back(def.pivot_name());
  SummarizeValues(def.values_def(), out);
  SummarizeNested(def.nested_contexts(), out);
}

void Summarize(const tensorflow::WhileContextDef& def, ContextSummary* out) {
  for (const auto* name : {&def.pivot_name(), &def.pivot_for_pred_name(),
                           &def.pivot_for_body_name(), &def.maximum_iterations_name()}) {
    if (!name->empty()) out->tensors.push_back(*name);
  }
  for (const auto& n : def.loop_exit_names()) out->tensors.push_back(n);
  for (const auto& n : def.loop_enter_names()) out->tensors.push_back(n);
  SummarizeValues(def.values_def(), out);
  SummarizeNested(def.nested_contexts(), out);
}

bool RestrictValues(const ContextNameMap& map, tensorflow::ValuesDef* values) {
  google::protobuf::Map<std::string, std::string> external;
  for (const auto& [key, value] : values->external_values()) {
    std::string k, v;
    if (map(key, &k) && map(value, &v)) external[k] = v;
  }
  google::protobuf::RepeatedPtrField<std::string> kept;
  for (const auto& name : values->values()) {
    std::string mapped;
    if (map(name, &mapped)) *kept.Add() = mapped;
  }
  values->mutable_values()->Swap(&kept);
  values->mutable_external_values()->swap(external);
  return true;
}

bool Required(const ContextNameMap& map, std::string* name, std::string* missing) {
  std::string mapped;
  if (!map(*name, &mapped)) {
    *missing = *name;
    return false;
  }
  *name = mapped;
  return true;
}

bool Restrict(const ContextNameMap& map, tensorflow::CondContextDef* def, std::string* missing);
bool Restrict(const ContextNameMap& map, tensorflow::WhileContextDef* def, std::string* missing);

bool RestrictNested(const ContextNameMap& map,
                    google::protobuf::RepeatedPtrField<tensorflow::ControlFlowContextDef>* nested,
                    std::string* missing) {
  for (auto& n : *nested) {
    if (n.has_cond_ctxt() && !Restrict(map, n.mutable_cond_ctxt(), missing)) return false;
    if (n.has_while_ctxt() && !Restrict(map, n.mutable_while_ctxt(), missing)) return false;
  }
  return true;
}

bool Restrict(const ContextNameMap& map, tensorflow::CondContextDef* def, std::string* missing) {
  return Required(map, def->mutable_pred_name(), missing) &&
         Required(map, def->mutable_pivot_name(), missing) &&
         RestrictValues(map, def->mutable_values_def()) &&
         RestrictNested(map, def->mutable_nested_contexts(), missing);
}

bool Restrict(const ContextNameMap& map, tensorflow::WhileContextDef* def, std::string* missing) {
  for (auto* name : {def->mutable_pivot_name(), def->mutable_pivot_for_pred_name(),
                     def->mutable_pivot_for_body_name()}) {
    if (!Required(map, name, missing)) return false;
  }
  for (auto& name : *def->mutable_loop_exit_names()) {
    if (!Required(map, &name, missing)) return false;
  }
  for (auto& name : *def->mutable_loop_enter_names()) {
    if (!Required(map, &name, missing)) return false;
  }
  if (!def->maximum_iterations_name().empty()) {
    std::string mapped;
    def->set_maximum_iterations_name(map(def->maximum_iterations_name(), &mapped) ? mapped : "");
  }
  return RestrictValues(map, def->mutable_values_def()) &&
         RestrictNested(map, def->mutable_nested_contexts(), missing);
}

}  // namespace

bool SummarizeContext(const std::string& key, const std::string& bytes, ContextSummary* out) {
  if (key == "cond_context") {
    tensorflow::CondContextDef def;
    if (!def.ParseFromString(bytes)) return false;
    out->name = def.context_name();
    Summarize(def, out);
    return true;
  }
  tensorflow::WhileContextDef def;
  if (!def.ParseFromString(bytes)) return false;
  out->name = def.context_name();
  Summarize(def, out);
  return true;
}

bool RestrictContext(const std::string& key, const std::string& bytes, const ContextNameMap& map,
                     std::string* out, std::string* missing) {
  if (key == "cond_context") {
    tensorflow::CondContextDef def;
    if (!def.ParseFromString(bytes) || !Restrict(map, &def, missing)) return false;
    return def.SerializeToString(out);
  }
  tensorflow::WhileContextDef def;
  if (!def.ParseFromString(bytes) || !Restrict(map, &def, missing)) return false;
  return def.SerializeToString(out);
}

void CollectContexts(const VariantIndex& index, const std::string& key,
                     const std::vector<char>& keep, std::vector<std::string>* out,
                     std::vector<int>* extra_roots) {
  const auto* coll = index.Collection(key);
  if (coll == nullptr || !coll->has_bytes_list()) return;
  for (const auto& bytes : coll->bytes_list().value()) {
    ContextSummary summary;
    if (!SummarizeContext(key, bytes, &summary)) continue;
    bool referenced = false;
    for (const auto& op : summary.owned_ops) {
      const int n = index.Find(op);
      if (n >= 0 && keep[n]) referenced = true;
    }
    if (!referenced) continue;
    out->push_back(bytes);
    for (const auto& name : summary.tensors) {
      const int n = name.empty() ? -1 : index.Find(name);
      if (n >= 0 && !keep[n]) extra_roots->push_back(n);
    }
  }
}

void PrefixSharedName(const std::string& scope, tensorflow::NodeDef* node) {
  auto it = node->mutable_attr()->find(kSharedName);
  if (it != node->mutable_attr()->end() && it->second.value_case() == tensorflow::AttrValue::kS &&
      !it->second.s().empty()) {
    it->second.set_s(Join(scope, it->second.s()));
  }
}

void CopyGraphHeader(const tensorflow::GraphDef& from, tensorflow::GraphDef* to) {
  *to->mutable_versions() = from.versions();
  if (from.library().function_size() > 0 || from.library().gradient_size() > 0) {
    *to->mutable_library() = from.library();
  }
}

}  // namespace hubcore::internal
