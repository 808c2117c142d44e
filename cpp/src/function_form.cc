// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Signatures as self-contained functions for TF2 (see hubcore/function_form.h).
#include "hubcore/function_form.h"

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
#include "tensorflow/core/framework/types.pb.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "variant_index.h"

namespace hubcore {
namespace {

using internal::Edge;
using internal::ParseTensorName;
using internal::TensorName;

// Attributes that only matter to TF1 graph placement or are advisory.
constexpr const char* kDroppedAttrs[] = {internal::kColocationAttr, internal::kOutputShapes};

enum class StateKind : char { kNone, kResourceVariable, kRefVariable, kResource };

// TF1 ops that take a ref variable as input 0, and the resource op doing the same to a handle.
struct RefOpRewrite {
  const char* resource_op;
  bool value_dtype;    // The resource op has a `dtype` attribute (the ref op's `T`).
  bool returns_value;  // The ref op outputs the variable (consumers then read it afresh).
};

const std::unordered_map<std::string, RefOpRewrite>& RefOpRewrites() {
  static const auto* rewrites = new std::unordered_map<std::string, RefOpRewrite>{
      {"Assign", {"AssignVariableOp", true, true}},
      {"AssignAdd", {"AssignAddVariableOp", true, true}},
      {"AssignSub", {"AssignSubVariableOp", true, true}},
      {"ScatterUpdate", {"ResourceScatterUpdate", true, true}},
      {"ScatterAdd", {"ResourceScatterAdd", true, true}},
      {"ScatterSub", {"ResourceScatterSub", true, true}},
      {"ScatterMul", {"ResourceScatterMul", true, true}},
      {"ScatterDiv", {"ResourceScatterDiv", true, true}},
      {"ScatterMin", {"ResourceScatterMin", true, true}},
      {"ScatterMax", {"ResourceScatterMax", true, true}},
      {"IsVariableInitialized", {"VarIsInitializedOp", false, false}},
  };
  return *rewrites;
}

const tensorflow::AttrValue* AttrOrDefault(const tensorflow::NodeDef& node,
                                           const tensorflow::OpDef& op_def,
                                           const std::string& name) {
  auto it = node.attr().find(name);
  if (it != node.attr().end()) return &it->second;
  for (const auto& a : op_def.attr()) {
    if (a.name() == name && a.has_default_value()) return &a.default_value();
  }
  return nullptr;
}

// How many tensors `arg` stands for in `node` (list arguments resolved from attributes).
int ArgCount(const tensorflow::NodeDef& node, const tensorflow::OpDef& op_def,
             const tensorflow::OpDef::ArgDef& arg) {
  if (!arg.number_attr().empty()) {
    const auto* v = AttrOrDefault(node, op_def, arg.number_attr());
    return v ? static_cast<int>(v->i()) : 1;
  }
  if (!arg.type_list_attr().empty()) {
    const auto* v = AttrOrDefault(node, op_def, arg.type_list_attr());
    return v ? v->list().type_size() : 1;
  }
  return 1;
}

// The input argument behind data input `position` of `node`, or nullptr.
const tensorflow::OpDef::ArgDef* InputArg(const tensorflow::NodeDef& node,
                                          const tensorflow::OpDef& op_def, int position) {
  int first = 0;
  for (const auto& arg : op_def.input_arg()) {
    const int count = ArgCount(node, op_def, arg);
    if (position < first + count) return &arg;
    first += count;
  }
  return nullptr;
}

// The dtype of output `index` of `node`, or DT_INVALID when the op definition does not tell.
tensorflow::DataType OutputType(const tensorflow::NodeDef& node, const tensorflow::OpDef* op_def,
                                int index) {
  if (op_def == nullptr) return tensorflow::DT_INVALID;
  int first = 0;
  for (const auto& arg : op_def->output_arg()) {
    const int count = ArgCount(node, *op_def, arg);
    if (index < first + count) {
      if (!arg.type_list_attr().empty()) {
        const auto* v = AttrOrDefault(node, *op_def, arg.type_list_attr());
        return v && index - first < v->list().type_size() ? v->list().type(index - first)
                                                          : tensorflow::DT_INVALID;
      }
      if (!arg.type_attr().empty()) {
        const auto* v = AttrOrDefault(node, *op_def, arg.type_attr());
        return v ? v->type() : tensorflow::DT_INVALID;
      }
      return arg.type();
    }
    first += count;
  }
  return tensorflow::DT_INVALID;
}

// What the function forms of one graph variant need beyond the rewriter's VariantIndex (whose
// `is_state` also counts stateful ops that make no resource, e.g. Timestamp); built once.
struct VariantGraph : internal::VariantIndex {
  std::string where;                              // "graph variant {train}"
  std::vector<const tensorflow::OpDef*> op_defs;  // nullptr for an unknown op type.
  std::vector<StateKind> state;
  std::vector<char> is_asset;
  std::string arg_scope;  // A name prefix no node of the graph uses.
};

Status IndexVariant(const tensorflow::MetaGraphDef& meta, const GraphVariant& variant,
                    VariantGraph* graph) {
  HUBCORE_RETURN_IF_ERROR(internal::BuildIndex(meta, variant, graph));
  graph->where = "graph variant " + variant.TagsToString();
  const auto& nodes = meta.graph_def().node();
  std::unordered_map<std::string, const tensorflow::OpDef*> stripped;
  for (const auto& op : meta.meta_info_def().stripped_op_list().op()) stripped[op.name()] = &op;
  graph->op_defs.assign(nodes.size(), nullptr);
  graph->state.assign(nodes.size(), StateKind::kNone);
  graph->is_asset.assign(nodes.size(), 0);
  for (int n : graph->asset_nodes) graph->is_asset[n] = 1;
  bool scope_taken = false;
  graph->arg_scope = "hubcore_args";
  for (int i = 0; i < nodes.size(); ++i) {
    const auto& node = nodes[i];
    if (node.name().rfind(graph->arg_scope, 0) == 0) scope_taken = true;
    const tensorflow::OpDef* op_def = nullptr;
    if (!tensorflow::OpRegistry::Global()->LookUpOpDef(node.op(), &op_def).ok()) {
      auto it = stripped.find(node.op());
      op_def = it == stripped.end() ? nullptr : it->second;
    }
    graph->op_defs[i] = op_def;
    // A state op creates a resource (or a TF1 ref variable) from nothing.
    if (!graph->is_state[i] || op_def == nullptr || op_def->output_arg_size() != 1) continue;
    const auto& out = op_def->output_arg(0);
    if (node.op() == "VarHandleOp") {
      graph->state[i] = StateKind::kResourceVariable;
    } else if (out.is_ref() && (node.op() == "VariableV2" || node.op() == "Variable")) {
      graph->state[i] = StateKind::kRefVariable;
    } else if (!out.is_ref() && OutputType(node, op_def, 0) == tensorflow::DT_RESOURCE) {
      graph->state[i] = StateKind::kResource;
    }
  }
  if (scope_taken) graph->arg_scope += "_" + std::to_string(nodes.size());
  return Status::OK();
}

// What a function form computes: outputs and targets from signature inputs.
struct Request {
  std::vector<std::pair<std::string, std::vector<std::string>>> outputs;
  std::vector<std::string> targets;
  // Signature inputs in order: (key, component tensor names).
  std::vector<std::pair<std::string, std::vector<std::string>>> inputs;
};

// Builds the function form of `request`: the closure of its outputs and targets, cut at state
// ops, signature inputs and asset constants (which become Placeholder arguments).
class FormBuilder {
 public:
  FormBuilder(const VariantGraph& graph, const Request& request, std::string where)
      : graph_(graph), request_(request), where_(std::move(where)) {}

  Status Build(FunctionForm* out) {
    const int num_nodes = graph_.meta->graph_def().node_size();
    // Signature input tensors -> argument placeholder.
    for (const auto& [key, tensors] : request_.inputs) {
      for (size_t c = 0; c < tensors.size(); ++c) {
        int idx;
        const int n = graph_.Find(tensors[c], &idx);
        if (n < 0) {
          return DataLoss(where_ + ": input tensor '" + tensors[c] + "' is not in the graph");
        }
        FunctionArg arg;
        arg.kind = FunctionArg::kInput;
        arg.placeholder = graph_.arg_scope + "/input_" + std::to_string(args_.size());
        arg.dtype = OutputType(graph_.node(n), graph_.op_defs[n], idx);
        if (arg.dtype == tensorflow::DT_INVALID) {
          return DataLoss(where_ + ": cannot tell the dtype of input tensor '" + tensors[c] + "'");
        }
        arg.input_key = key;
        arg.component = static_cast<int>(c);
        input_args_[TensorName(graph_.node(n).name(), idx)] = arg.placeholder;
        input_nodes_.insert(n);
        args_.push_back(std::move(arg));
      }
    }

    keep_.assign(num_nodes, 0);
    std::vector<int> stack;
    auto visit = [&](int n) {
      if (!keep_[n] && !IsCut(n)) {
        keep_[n] = 1;
        stack.push_back(n);
      }
    };
    for (const auto& [key, tensors] : request_.outputs) {
      for (const auto& name : tensors) {
        const int n = graph_.Find(name);
        if (n < 0) return DataLoss(where_ + ": output tensor '" + name + "' is not in the graph");
        if (!input_args_.count(Normalized(name))) visit(n);
      }
    }
    for (const auto& name : request_.targets) {
      const int n = graph_.Find(name);
      if (n < 0) return DataLoss(where_ + ": op '" + name + "' is not in the graph");
      visit(n);
    }
    while (!stack.empty()) {
      const int n = stack.back();
      stack.pop_back();
      for (const Edge& e : graph_.inputs[n]) {
        if (e.index >= 0 && input_args_.count(TensorName(graph_.node(e.node).name(), e.index))) {
          continue;
        }
        if (e.index < 0 && input_nodes_.count(e.node)) continue;
        visit(e.node);
      }
    }

    tensorflow::GraphDef result;
    const auto& source = graph_.meta->graph_def();
    internal::CopyGraphHeader(source, &result);
    std::vector<tensorflow::NodeDef> body;
    for (int n = 0; n < num_nodes; ++n) {
      if (!keep_[n]) continue;
      const auto& node = graph_.node(n);
      if (node.op().rfind("Ref", 0) == 0) {
        return Unimplemented(where_ + ": op '" + node.name() + "' (" + node.op() +
                             ") works on TF1 ref variables and has no resource equivalent");
      }
      tensorflow::NodeDef copy = node;
      HUBCORE_RETURN_IF_ERROR(RewriteNode(n, &copy, &body));
      body.push_back(std::move(copy));
    }
    for (auto& [key, tensors] : request_.outputs) {
      auto& refs = out->outputs[key];
      for (const auto& name : tensors) {
        std::string tensor;
        HUBCORE_RETURN_IF_ERROR(RewriteOutput(name, &tensor, &body));
        refs.push_back(std::move(tensor));
      }
    }
    for (const auto& name : request_.targets) {
      std::string node;
      int idx;
      ParseTensorName(name, &node, &idx);
      out->targets.push_back(node);
    }
    for (const auto& arg : args_) {
      tensorflow::NodeDef* placeholder = result.add_node();
      placeholder->set_name(arg.placeholder);
      placeholder->set_op("Placeholder");
      (*placeholder->mutable_attr())["dtype"].set_type(
          static_cast<tensorflow::DataType>(arg.dtype));
    }
    for (auto& node : body) *result.add_node() = std::move(node);
    out->args = std::move(args_);
    out->num_nodes = result.node_size();
    out->graph_def = result.SerializeAsString();
    return Status::OK();
  }

 private:
  bool IsCut(int n) const { return graph_.state[n] != StateKind::kNone || graph_.is_asset[n]; }

  std::string Normalized(const std::string& tensor) const {
    std::string node;
    int idx;
    ParseTensorName(tensor, &node, &idx);
    return TensorName(node, idx);
  }

  // The placeholder of state op or asset `n`, added on first use.
  const std::string& ArgFor(int n) {
    auto it = cut_args_.find(n);
    if (it != cut_args_.end()) return it->second;
    const auto& node = graph_.node(n);
    FunctionArg arg;
    if (graph_.is_asset[n]) {
      arg.kind = FunctionArg::kAsset;
      arg.placeholder = graph_.arg_scope + "/asset_" + std::to_string(args_.size());
      arg.dtype = tensorflow::DT_STRING;
      auto value = node.attr().find("value");
      if (value != node.attr().end() && value->second.tensor().string_val_size() > 0) {
        arg.asset_path = value->second.tensor().string_val(0);
      }
    } else {
      arg.kind = FunctionArg::kState;
      arg.placeholder = graph_.arg_scope + "/state_" + std::to_string(args_.size());
      arg.dtype = tensorflow::DT_RESOURCE;
      arg.state = node.name();
    }
    args_.push_back(arg);
    return cut_args_.emplace(n, arg.placeholder).first->second;
  }

  // A ReadVariableOp of ref variable `var` named `name` (TF1 reads a ref variable implicitly).
  tensorflow::NodeDef ReadOf(int var, const std::string& name) {
    tensorflow::NodeDef read;
    read.set_name(name);
    read.set_op("ReadVariableOp");
    read.add_input(ArgFor(var));
    auto dtype = graph_.node(var).attr().find("dtype");
    (*read.mutable_attr())["dtype"].set_type(
        dtype == graph_.node(var).attr().end() ? tensorflow::DT_INVALID : dtype->second.type());
    return read;
  }

  // For a data edge into a converted ref op's output: a fresh read after that op ran.
  std::string ValueAfter(int op, std::vector<tensorflow::NodeDef>* body) {
    const std::string name = graph_.node(op).name() + "/hubcore_value";
    if (value_reads_.insert(op).second) {
      const int var = graph_.inputs[op][0].node;
      tensorflow::NodeDef read = ReadOf(var, name);
      read.add_input("^" + graph_.node(op).name());
      body->push_back(std::move(read));
    }
    return name;
  }

  bool IsConvertedRefOp(int n) const {
    const auto& node = graph_.node(n);
    return RefOpRewrites().count(node.op()) && !graph_.inputs[n].empty() &&
           graph_.inputs[n][0].index >= 0 &&
           graph_.state[graph_.inputs[n][0].node] == StateKind::kRefVariable;
  }

  Status RewriteNode(int n, tensorflow::NodeDef* node, std::vector<tensorflow::NodeDef>* body) {
    for (const char* attr : kDroppedAttrs) node->mutable_attr()->erase(attr);
    node->clear_device();
    const bool converted = IsConvertedRefOp(n);
    std::vector<std::string> controls;
    for (const Edge& e : graph_.inputs[n]) {
      if (e.index < 0 && !IsCut(e.node) && !input_nodes_.count(e.node)) {
        controls.push_back("^" + graph_.node(e.node).name());
      }
    }
    google::protobuf::RepeatedPtrField<std::string> inputs;
    int position = 0;
    for (size_t i = 0; i < graph_.inputs[n].size(); ++i) {
      const Edge& e = graph_.inputs[n][i];
      if (e.index < 0) continue;
      const auto& source = graph_.node(e.node);
      auto input = input_args_.find(TensorName(source.name(), e.index));
      if (input != input_args_.end()) {
        *inputs.Add() = input->second;
      } else if (graph_.is_asset[e.node] || graph_.state[e.node] == StateKind::kResource ||
                 graph_.state[e.node] == StateKind::kResourceVariable) {
        *inputs.Add() = ArgFor(e.node);
      } else if (graph_.state[e.node] == StateKind::kRefVariable) {
        const auto* op_def = graph_.op_defs[n];
        const auto* arg = op_def ? InputArg(*node, *op_def, position) : nullptr;
        if (converted && position == 0) {
          *inputs.Add() = ArgFor(e.node);
        } else if (arg != nullptr && arg->is_ref()) {
          return Unimplemented(where_ + ": op '" + node->name() + "' (" + node->op() +
                               ") writes TF1 ref variable '" + source.name() +
                               "' and has no resource equivalent");
        } else {
          const std::string name = node->name() + "/hubcore_read_" + std::to_string(position);
          tensorflow::NodeDef read = ReadOf(e.node, name);
          for (const auto& c : controls) read.add_input(c);
          body->push_back(std::move(read));
          *inputs.Add() = name;
        }
      } else if (IsConvertedRefOp(e.node) && RefOpRewrites().at(source.op()).returns_value) {
        *inputs.Add() = ValueAfter(e.node, body);
      } else {
        *inputs.Add() = node->input(static_cast<int>(i));
      }
      ++position;
    }
    for (const auto& c : controls) *inputs.Add() = c;
    node->mutable_input()->Swap(&inputs);
    if (converted) {
      const RefOpRewrite& rewrite = RefOpRewrites().at(node->op());
      auto* attrs = node->mutable_attr();
      tensorflow::AttrValue dtype = (*attrs)["T"];
      node->set_op(rewrite.resource_op);
      for (const char* attr : {"T", "use_locking", "validate_shape", "dtype"}) attrs->erase(attr);
      if (rewrite.value_dtype) (*attrs)["dtype"] = dtype;
    }
    return Status::OK();
  }

  Status RewriteOutput(const std::string& name, std::string* tensor,
                       std::vector<tensorflow::NodeDef>* body) {
    int idx;
    const int n = graph_.Find(name, &idx);
    const std::string normalized = TensorName(graph_.node(n).name(), idx);
    auto input = input_args_.find(normalized);
    if (input != input_args_.end()) {
      *tensor = input->second + ":0";
    } else if (graph_.is_asset[n]) {
      *tensor = ArgFor(n) + ":0";
    } else if (graph_.state[n] == StateKind::kRefVariable) {
      const std::string read = graph_.node(n).name() + "/hubcore_output_read";
      if (value_reads_.insert(n).second) body->push_back(ReadOf(n, read));
      *tensor = read + ":0";
    } else if (graph_.state[n] != StateKind::kNone) {
      return Unimplemented(where_ + ": output '" + name + "' is a resource handle");
    } else if (IsConvertedRefOp(n)) {
      *tensor = ValueAfter(n, body) + ":0";
    } else {
      *tensor = normalized;
    }
    return Status::OK();
  }

  const VariantGraph& graph_;
  const Request& request_;
  const std::string where_;
  std::vector<FunctionArg> args_;
  std::unordered_map<std::string, std::string> input_args_;  // "node:i" -> placeholder.
  std::unordered_set<int> input_nodes_;
  std::unordered_map<int, std::string> cut_args_;  // State / asset node -> placeholder.
  std::unordered_set<int> value_reads_;
  std::vector<char> keep_;
};

}  // namespace

struct FunctionFormBuilder::Impl {
  std::mutex mu;
  std::map<int, std::unique_ptr<VariantGraph>> graphs;  // By meta graph index.

  Status Get(const ModuleSpec& spec, const std::set<std::string>& tags, const VariantGraph** out) {
    const auto& data = spec.data();
    int i = -1;
    HUBCORE_RETURN_IF_ERROR(internal::FindVariant(data, tags, &i));
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = graphs[i];
    if (!slot) {
      auto graph = std::make_unique<VariantGraph>();
      HUBCORE_RETURN_IF_ERROR(
          IndexVariant(data.saved_model.meta_graphs(i), data.variants[i], graph.get()));
      slot = std::move(graph);
    }
    *out = slot.get();
    return Status::OK();
  }
};

FunctionFormBuilder::FunctionFormBuilder(std::shared_ptr<const ModuleSpec> spec)
    : spec_(std::move(spec)), impl_(std::make_unique<Impl>()) {}
FunctionFormBuilder::~FunctionFormBuilder() = default;

Status FunctionFormBuilder::ListState(const std::set<std::string>& tags,
                                      std::vector<StateResource>* out) {
  const VariantGraph* graph;
  HUBCORE_RETURN_IF_ERROR(impl_->Get(*spec_, tags, &graph));
  for (size_t n = 0; n < graph->state.size(); ++n) {
    if (graph->state[n] == StateKind::kNone) continue;
    StateResource resource;
    resource.node = graph->node(static_cast<int>(n)).name();
    resource.is_variable = graph->state[n] != StateKind::kResource;
    if (!resource.is_variable) {
      tensorflow::NodeDef node = graph->node(static_cast<int>(n));
      node.clear_device();
      node.clear_input();
      for (const char* attr : kDroppedAttrs) node.mutable_attr()->erase(attr);
      resource.node_def = node.SerializeAsString();
    }
    out->push_back(std::move(resource));
  }
  return Status::OK();
}

Status FunctionFormBuilder::BuildSignature(const std::set<std::string>& tags,
                                           const std::string& signature, bool run_update_ops,
                                           FunctionForm* out) {
  const VariantGraph* graph;
  HUBCORE_RETURN_IF_ERROR(impl_->Get(*spec_, tags, &graph));
  const SignatureInfo* sig = graph->variant->FindSignature(signature);
  if (sig == nullptr) {
    return SignatureNotFound("Signature '" + signature + "' is missing from meta graph " +
                             graph->variant->TagsToString());
  }
  const std::string where = "signature '" + signature + "' of " + graph->where;
  Request request;
  for (const auto& input : sig->inputs) request.inputs.emplace_back(input.key, input.tensor_names);
  for (const auto& output : sig->outputs) {
    request.outputs.emplace_back(output.key, output.tensor_names);
  }
  if (run_update_ops) {
    // The update ops hub.Module(trainable=True) runs with this signature.
    std::unordered_set<std::string> input_tensors;
    for (const auto& input : sig->inputs) {
      for (const auto& t : input.tensor_names) {
        std::string node;
        int idx;
        ParseTensorName(t, &node, &idx);
        input_tensors.insert(TensorName(node, idx));
      }
    }
    auto stop = [&](int node, int idx) {
      return graph->is_state[node] ||
             (idx >= 0 && input_tensors.count(TensorName(graph->node(node).name(), idx)) > 0);
    };
    std::vector<std::pair<std::string, int>> updates;
    HUBCORE_RETURN_IF_ERROR(internal::SelectUpdateOps(*graph, where, stop, &updates));
    for (const auto& update : updates) request.targets.push_back(update.first);
  }
  return FormBuilder(*graph, request, where).Build(out);
}

Status FunctionFormBuilder::BuildInitializer(const std::set<std::string>& tags,
                                             const std::string& state, FunctionForm* out) {
  const VariantGraph* graph;
  HUBCORE_RETURN_IF_ERROR(impl_->Get(*spec_, tags, &graph));
  const int target = graph->Find(state);
  if (target < 0 || graph->state[target] == StateKind::kNone) {
    return InvalidArgument(graph->where + " has no state op '" + state + "'");
  }
  Request request;
  if (const auto* coll = graph->Collection("table_initializer")) {
    for (const auto& name : coll->node_list().value()) {
      const int n = graph->Find(name);
      if (n < 0) {
        return DataLoss(graph->where + ": table initializer '" + name + "' is not in the graph");
      }
      for (const Edge& e : graph->inputs[n]) {
        if (e.node == target && e.index >= 0) {
          request.targets.push_back(name);
          break;
        }
      }
    }
  }
  return FormBuilder(*graph, request, "initializer of '" + state + "' in " + graph->where)
      .Build(out);
}

Status FunctionFormBuilder::BuildRegularizationLosses(const std::set<std::string>& tags,
                                                      FunctionForm* out) {
  const VariantGraph* graph;
  HUBCORE_RETURN_IF_ERROR(impl_->Get(*spec_, tags, &graph));
  Request request;
  if (const auto* coll = graph->Collection("regularization_losses")) {
    int i = 0;
    for (const auto& name : coll->node_list().value()) {
      request.outputs.push_back({std::to_string(i++), {name}});
    }
  }
  return FormBuilder(*graph, request, "regularization losses of " + graph->where).Build(out);
}

}  // namespace hubcore
