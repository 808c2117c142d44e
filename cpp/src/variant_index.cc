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
