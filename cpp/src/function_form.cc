// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Signatures as self-contained functions for TF2 (see hubcore/function_form.h).
#include "hubcore/function_form.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "module_spec_data.h"
#include "tensorflow/c/c_api.h"
#include "tensorflow/core/framework/attr_value.pb.h"
#include "tensorflow/core/framework/function.pb.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_def.pb.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/framework/types.pb.h"
#include "tensorflow/core/protobuf/control_flow.pb.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "variant_index.h"

namespace hubcore {
namespace {

using internal::Edge;
using internal::ParseTensorName;
using internal::TensorName;

// The gradient (`_gradient_op_type`) of the call nodes that run TF1 while loops; hubcore.load
// registers it (eager_module.py).
constexpr char kLoopGradient[] = "HubcoreV1WhileLoop";

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
  std::string where;  // "graph variant {train} of module /path"
  std::string module_path;
  std::string variant_name;                       // "graph variant {train}"
  std::vector<const tensorflow::OpDef*> op_defs;  // nullptr for an unknown op type.
  std::vector<StateKind> state;
  std::vector<char> is_asset;
  std::string arg_scope;  // A name prefix no node of the graph uses.
  // The graph's function library (v2 control-flow branches and bodies, Defuns), each function
  // renamed to "<name>_<hash of its definition>": TF2 registers functions by name in the process'
  // eager context, where another module, or the Python code that built this one, may have used
  // the same name for a different body. Same definition, same name: loading a module twice
  // registers nothing new.
  tensorflow::FunctionDefLibrary library;
  std::unordered_map<std::string, std::string> function_names;  // Original -> renamed.
  std::unordered_map<std::string, int> function_index;          // Renamed -> library position.
  std::vector<std::vector<int>> function_deps;  // Per library position: the functions it uses.
};

// Calls `visit` with every function name `node` refers to (its op type, which may be a library
// function, and function-valued attributes); `visit` may rename it in place.
using FunctionRefVisitor = std::function<void(std::string*)>;

void VisitFunctionRefs(tensorflow::AttrValue* value, const FunctionRefVisitor& visit);

void VisitFunctionRefs(tensorflow::NameAttrList* function, const FunctionRefVisitor& visit) {
  visit(function->mutable_name());
  for (auto& [unused, value] : *function->mutable_attr()) VisitFunctionRefs(&value, visit);
}

void VisitFunctionRefs(tensorflow::AttrValue* value, const FunctionRefVisitor& visit) {
  if (value->has_func()) {
    VisitFunctionRefs(value->mutable_func(), visit);
  } else if (value->has_list()) {
    for (auto& function : *value->mutable_list()->mutable_func()) {
      VisitFunctionRefs(&function, visit);
    }
  }
}

void VisitFunctionRefs(tensorflow::NodeDef* node, const FunctionRefVisitor& visit) {
  visit(node->mutable_op());
  for (auto& [unused, value] : *node->mutable_attr()) VisitFunctionRefs(&value, visit);
}

void VisitFunctionRefs(tensorflow::FunctionDef* function, const FunctionRefVisitor& visit) {
  for (auto& node : *function->mutable_node_def()) VisitFunctionRefs(&node, visit);
  for (auto& [unused, value] : *function->mutable_attr()) VisitFunctionRefs(&value, visit);
}

// A stable hash of `message` (deterministic serialization: map fields sorted).
std::string ContentHash(const google::protobuf::Message& message, const std::string& extra) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  bytes += extra;
  uint64_t hash = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

// Fills graph->library from `source`: every function renamed after its content (callees first,
// so that a caller's hash covers its callees' new names), with the references between them and
// the gradient table updated.
void RenameLibrary(const tensorflow::FunctionDefLibrary& source, VariantGraph* graph) {
  const int count = source.function_size();
  if (count == 0) return;
  std::unordered_map<std::string, int> by_name;
  for (int i = 0; i < count; ++i) by_name[source.function(i).signature().name()] = i;
  std::unordered_map<std::string, std::string> gradient_of;
  for (const auto& g : source.gradient()) gradient_of[g.function_name()] = g.gradient_func();
  std::vector<std::vector<int>> uses(count);
  for (int i = 0; i < count; ++i) {
    tensorflow::FunctionDef copy = source.function(i);
    VisitFunctionRefs(&copy, [&](std::string* name) {
      auto it = by_name.find(*name);
      if (it != by_name.end()) uses[i].push_back(it->second);
    });
    auto g = gradient_of.find(copy.signature().name());
    if (g != gradient_of.end() && by_name.count(g->second)) uses[i].push_back(by_name[g->second]);
  }
  std::vector<char> state(count, 0);  // 0 new, 1 on the stack, 2 renamed.
  std::function<void(int)> rename = [&](int i) {
    if (state[i] != 0) return;  // Done, or a cycle (which TensorFlow rejects anyway).
    state[i] = 1;
    for (int callee : uses[i]) rename(callee);
    tensorflow::FunctionDef function = source.function(i);
    const std::string original = function.signature().name();
    VisitFunctionRefs(&function, [&](std::string* name) {
      auto it = graph->function_names.find(*name);
      if (it != graph->function_names.end()) *name = it->second;
    });
    std::string gradient;
    auto g = gradient_of.find(original);
    if (g != gradient_of.end()) {
      auto renamed = graph->function_names.find(g->second);
      gradient = renamed == graph->function_names.end() ? g->second : renamed->second;
    }
    const std::string name = original + "_" + ContentHash(function, gradient);
    function.mutable_signature()->set_name(name);
    graph->function_names[original] = name;
    graph->function_index[name] = graph->library.function_size();
    *graph->library.add_function() = std::move(function);
    state[i] = 2;
  };
  for (int i = 0; i < count; ++i) rename(i);
  graph->function_deps.resize(count);
  for (int i = 0; i < count; ++i) {
    const auto& name = source.function(i).signature().name();
    const int position = graph->function_index[graph->function_names[name]];
    for (int callee : uses[i]) {
      const auto& callee_name = graph->function_names[source.function(callee).signature().name()];
      graph->function_deps[position].push_back(graph->function_index[callee_name]);
    }
  }
  for (const auto& g : source.gradient()) {
    auto f = graph->function_names.find(g.function_name());
    auto d = graph->function_names.find(g.gradient_func());
    if (f == graph->function_names.end() || d == graph->function_names.end()) continue;
    auto* entry = graph->library.add_gradient();
    entry->set_function_name(f->second);
    entry->set_gradient_func(d->second);
  }
}

// The nodes of a form's body by name, for following their inputs ("node:1", "^node").
class BodyNodes {
 public:
  explicit BodyNodes(const std::vector<tensorflow::NodeDef>& body) {
    for (size_t i = 0; i < body.size(); ++i) position_[body[i].name()] = static_cast<int>(i);
  }
  // The position of the node named `name`, or -1.
  int Find(const std::string& name) const {
    auto it = position_.find(name);
    return it == position_.end() ? -1 : it->second;
  }
  // The position of the node an input refers to, or -1 when it is not in the body.
  int Source(const std::string& input) const {
    std::string name;
    int idx;
    ParseTensorName(input[0] == '^' ? input.substr(1) : input, &name, &idx);
    return Find(name);
  }

 private:
  std::unordered_map<std::string, int> position_;
};

Status IndexVariant(const tensorflow::MetaGraphDef& meta, const GraphVariant& variant,
                    const std::string& module_path, VariantGraph* graph) {
  HUBCORE_RETURN_IF_ERROR(internal::BuildIndex(meta, variant, graph));
  graph->module_path = module_path;
  graph->variant_name = "graph variant " + variant.TagsToString();
  graph->where = graph->variant_name + " of module " + module_path;
  RenameLibrary(meta.graph_def().library(), graph);
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
  // `what` is the form's part of the graph ("signature 'default'"), as errors name it.
  FormBuilder(const VariantGraph& graph, const Request& request, const std::string& what)
      : graph_(graph), request_(request), what_(what), where_(what + " of " + graph.where) {}

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
    auto close = [&] {
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
    close();
    // TF1 control flow: the v1 cond / while contexts of kept ops, with every op they name (a
    // cond branch's pivot, e.g., need not be on any output's path), until nothing new is kept.
    std::vector<std::string> cond_defs, while_defs;
    for (;;) {
      std::vector<int> extra;
      cond_defs.clear();
      while_defs.clear();
      internal::CollectContexts(graph_, "cond_context", keep_, &cond_defs, &extra);
      internal::CollectContexts(graph_, "while_context", keep_, &while_defs, &extra);
      for (int n : extra) {
        if (!input_nodes_.count(n)) visit(n);
      }
      if (stack.empty()) break;
      close();
    }

    tensorflow::GraphDef result;
    const auto& source = graph_.meta->graph_def();
    *result.mutable_versions() = source.versions();
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
    *result.mutable_library() = UsedFunctions(body);
    {
      std::vector<const tensorflow::NodeDef*> nodes;
      for (const auto& node : body) nodes.push_back(&node);
      HUBCORE_RETURN_IF_ERROR(internal::CheckOpsRegistered(
          nodes, result.library(),
          "Module " + graph_.module_path + ": " + what_ + " of " + graph_.variant_name,
          "tf.load_op_library"));
    }
    SwitchVariableValues(&body);
    HUBCORE_RETURN_IF_ERROR(AddCondContexts(cond_defs, out));
    HUBCORE_RETURN_IF_ERROR(RunLoopsAsFunctions(while_defs, &result, &body, out));
    HUBCORE_RETURN_IF_ERROR(CheckControlFlowCovered(body, cond_defs));
    for (auto& node : body) *result.add_node() = std::move(node);
    out->args = std::move(args_);
    out->num_nodes = result.node_size();
    out->graph_def = result.SerializeAsString();
    return Status::OK();
  }

 private:
  bool IsCut(int n) const { return graph_.state[n] != StateKind::kNone || graph_.is_asset[n]; }

  // The renamed library functions `body` uses, directly or through other functions.
  tensorflow::FunctionDefLibrary UsedFunctions(std::vector<tensorflow::NodeDef>& body) const {
    tensorflow::FunctionDefLibrary used;
    const int count = graph_.library.function_size();
    if (count == 0) return used;
    std::vector<char> mark(count, 0);
    std::vector<int> stack;
    auto use = [&](int f) {
      if (!mark[f]) {
        mark[f] = 1;
        stack.push_back(f);
      }
    };
    for (auto& node : body) {
      VisitFunctionRefs(&node, [&](std::string* name) {
        auto it = graph_.function_index.find(*name);
        if (it != graph_.function_index.end()) use(it->second);
      });
    }
    while (!stack.empty()) {
      const int f = stack.back();
      stack.pop_back();
      for (int callee : graph_.function_deps[f]) use(callee);
    }
    for (int f = 0; f < count; ++f) {
      if (mark[f]) *used.add_function() = graph_.library.function(f);
    }
    for (const auto& g : graph_.library.gradient()) {
      auto it = graph_.function_index.find(g.function_name());
      if (it != graph_.function_index.end() && mark[it->second]) *used.add_gradient() = g;
    }
    return used;
  }

  // A tensor name of the graph as the function form calls it: a placeholder for an input, a
  // state op or an asset, its own name for a kept op; false when the form does not have it.
  bool FormTensor(const std::string& tensor, std::string* mapped) const {
    std::string node;
    int idx;
    ParseTensorName(tensor, &node, &idx);
    auto input = input_args_.find(TensorName(node, idx));
    if (input != input_args_.end()) {
      *mapped = input->second + ":0";
      return true;
    }
    const int n = graph_.Find(node);
    if (n < 0) return false;
    if (IsCut(n)) {
      auto arg = cut_args_.find(n);
      if (arg == cut_args_.end() || idx != 0 || graph_.state[n] == StateKind::kRefVariable) {
        return false;  // A ref variable's value is not its resource handle.
      }
      *mapped = arg->second + ":0";
      return true;
    }
    if (!keep_[n]) return false;
    *mapped = TensorName(node, idx);
    return true;
  }

  // A TF1 cond branch reads a resource variable through a Switch of its handle. In a backward
  // function that TF2 traces with automatic control dependencies (the gradient of a function
  // called inside another tf.function, e.g. Keras' train step), the TF1 gradient code switches
  // the handle again outside any cond context, which those dependencies cannot take. When such a
  // Switch only feeds ReadVariableOps, the variable is read before the cond and its value is
  // switched instead; the Switch and the reads keep their names (and so their contexts).
  void SwitchVariableValues(std::vector<tensorflow::NodeDef>* body) {
    auto& nodes = *body;
    const BodyNodes index(nodes);
    auto node_of = [&](const std::string& input) { return index.Source(input); };
    std::vector<std::vector<int>> readers(nodes.size());  // Per resource Switch.
    std::vector<char> other_uses(nodes.size(), 0);
    for (size_t i = 0; i < nodes.size(); ++i) {
      for (const auto& input : nodes[i].input()) {
        const int src = node_of(input);
        if (src < 0 || nodes[src].op() != "Switch") continue;
        if (input[0] != '^' && nodes[i].op() == "ReadVariableOp" &&
            nodes[i].attr().count("dtype")) {
          readers[src].push_back(static_cast<int>(i));
        } else {
          other_uses[src] = 1;
        }
      }
    }
    const size_t count = nodes.size();
    for (size_t s = 0; s < count; ++s) {
      tensorflow::NodeDef& sw = nodes[s];
      auto type = sw.attr().find("T");
      if (readers[s].empty() || other_uses[s] || type == sw.attr().end() ||
          type->second.type() != tensorflow::DT_RESOURCE || sw.input_size() < 2) {
        continue;
      }
      const int data = node_of(sw.input(0));
      if (data >= 0 && nodes[data].op() == "Merge") continue;  // A while loop's variable.
      const tensorflow::AttrValue dtype = nodes[readers[s][0]].attr().at("dtype");
      bool same_dtype = true;
      for (int r : readers[s]) same_dtype &= nodes[r].attr().at("dtype").type() == dtype.type();
      if (!same_dtype) continue;
      tensorflow::NodeDef read;
      read.set_name(sw.name() + "/hubcore_value");
      read.set_op("ReadVariableOp");
      read.add_input(sw.input(0));
      for (int k = 2; k < sw.input_size(); ++k) read.add_input(sw.input(k));  // Controls.
      (*read.mutable_attr())["dtype"] = dtype;
      sw.set_input(0, read.name());
      (*sw.mutable_attr())["T"] = dtype;
      for (int r : readers[s]) {
        tensorflow::NodeDef& reader = nodes[r];
        reader.set_op("Identity");
        reader.mutable_attr()->erase("dtype");
        (*reader.mutable_attr())["T"] = dtype;
      }
      value_switches_.insert(sw.name());
      nodes.push_back(std::move(read));  // After `sw` is last used: this may reallocate.
    }
  }

  // The v1 cond contexts, restricted to the form's names, for the caller to rebuild after the
  // import: TensorFlow needs them to differentiate Switch/Merge and to order resource ops in the
  // branches of a tf.function.
  Status AddCondContexts(const std::vector<std::string>& defs, FunctionForm* out) const {
    const internal::ContextNameMap map = [this](const std::string& tensor, std::string* mapped) {
      return FormTensor(tensor, mapped);
    };
    for (const auto& bytes : defs) {
      internal::ContextSummary summary;
      if (!internal::SummarizeContext("cond_context", bytes, &summary)) {
        return DataLoss(where_ + ": an entry of the cond_context collection does not parse");
      }
      if (summary.has_nested_while) {
        return Unimplemented(where_ + ": the TF1 cond '" + summary.name +
                             "' contains a TF1 while loop; hubcore.load runs TF1 while loops "
                             "as functions and cannot take one out of a TF1 cond");
      }
      std::string restricted, missing;
      if (!internal::RestrictContext("cond_context", bytes, map, &restricted, &missing)) {
        return DataLoss(where_ + ": the TF1 cond '" + summary.name + "' names tensor '" + missing +
                        "', which is not in the graph");
      }
      if (!value_switches_.empty()) {
        // A handle the cond switched now enters it as a value: forget the handle's mapping.
        tensorflow::CondContextDef def;
        def.ParseFromString(restricted);
        ForgetSwitchedHandles(&def);
        restricted = def.SerializeAsString();
      }
      out->cond_contexts.push_back(std::move(restricted));
    }
    return Status::OK();
  }

  void ForgetSwitchedHandles(tensorflow::CondContextDef* def) const {
    auto* values = def->mutable_values_def();
    std::unordered_set<std::string> handles;
    for (const auto& [handle, value] : values->external_values()) {
      std::string node;
      int idx;
      ParseTensorName(value, &node, &idx);
      if (value_switches_.count(node)) handles.insert(handle);
    }
    for (const auto& handle : handles) values->mutable_external_values()->erase(handle);
    google::protobuf::RepeatedPtrField<std::string> kept;
    for (const auto& value : values->values()) {
      if (!handles.count(value)) *kept.Add() = value;
    }
    values->mutable_values()->Swap(&kept);
    for (auto& nested : *def->mutable_nested_contexts()) {
      if (nested.has_cond_ctxt()) ForgetSwitchedHandles(nested.mutable_cond_ctxt());
    }
  }

  // Each v1 while loop becomes a library function called by one StatefulPartitionedCall node.
  // TensorFlow 2 runs a TF1 loop inside a function, but cannot build its gradient in a
  // tf.function (its TF1 gradient code compares tensors with `!=`, which TF2 makes an op); as a
  // call node the loop is one op whose gradient (`_gradient_op_type`, registered by
  // hubcore.load) fails with `_hubcore_message` when it runs, and whose ops TF2's automatic
  // control dependencies leave alone.
  Status RunLoopsAsFunctions(const std::vector<std::string>& defs, tensorflow::GraphDef* result,
                             std::vector<tensorflow::NodeDef>* body, FunctionForm* out) {
    if (defs.empty()) return Status::OK();
    auto& nodes = *body;
    const BodyNodes index(nodes);
    auto source_of = [&](const std::string& input) { return index.Source(input); };
    std::vector<std::vector<int>> consumers(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      for (const auto& input : nodes[i].input()) {
        const int src = source_of(input);
        if (src >= 0) consumers[src].push_back(static_cast<int>(i));
      }
    }
    // The ops of each loop: those its context (and nested ones) lists, and whatever consumes an
    // op inside the loop other than an Exit (a control-only op lists no value).
    const int num_loops = static_cast<int>(defs.size());
    std::vector<int> region(nodes.size(), -1);
    std::vector<std::string> loop_names;
    for (int l = 0; l < num_loops; ++l) {
      internal::ContextSummary summary;
      if (!internal::SummarizeContext("while_context", defs[l], &summary)) {
        return DataLoss(where_ + ": an entry of the while_context collection does not parse");
      }
      loop_names.push_back(summary.name);
      std::vector<int> queue;
      for (const auto& op : summary.owned_ops) {
        const int n = index.Find(op);
        if (n >= 0 && region[n] < 0) {
          region[n] = l;
          queue.push_back(n);
        }
      }
      while (!queue.empty()) {
        const int r = queue.back();
        queue.pop_back();
        if (nodes[r].op() == "Exit") continue;
        for (int c : consumers[r]) {
          if (region[c] < 0) {
            region[c] = l;
            queue.push_back(c);
          }
        }
      }
    }
    // Per loop: the outside tensors it reads, the outside control inputs (moved to the call),
    // and its tensors read outside (by ops, or as form outputs).
    struct Loop {
      std::vector<std::string> inputs, controls, outputs;
      std::string call;
    };
    std::vector<Loop> loops(num_loops);
    auto add_unique = [](std::vector<std::string>* list, const std::string& value) {
      if (std::find(list->begin(), list->end(), value) == list->end()) list->push_back(value);
    };
    tensorflow::GraphDef full = *result;
    for (size_t i = 0; i < nodes.size(); ++i) {
      tensorflow::NodeDef* copy = full.add_node();
      *copy = nodes[i];
      const int l = region[i];
      copy->clear_input();
      for (const auto& input : nodes[i].input()) {
        const int src = source_of(input);
        const int src_region = src < 0 ? -1 : region[src];
        if (l >= 0 && src_region != l) {
          if (input[0] == '^') {
            add_unique(&loops[l].controls, input);
            continue;
          }
          add_unique(&loops[l].inputs, Normalized(input));
        }
        if (l != src_region && src_region >= 0 && input[0] != '^') {
          add_unique(&loops[src_region].outputs, Normalized(input));
        }
        *copy->add_input() = input;
      }
    }
    for (const auto& [key, tensors] : out->outputs) {
      for (const auto& tensor : tensors) {
        const int src = source_of(tensor);
        if (src >= 0 && region[src] >= 0) add_unique(&loops[region[src]].outputs, tensor);
      }
    }

    std::unique_ptr<TF_Graph, decltype(&TF_DeleteGraph)> graph(TF_NewGraph(), TF_DeleteGraph);
    std::unique_ptr<TF_Status, decltype(&TF_DeleteStatus)> status(TF_NewStatus(), TF_DeleteStatus);
    {
      const std::string bytes = full.SerializeAsString();
      std::unique_ptr<TF_Buffer, decltype(&TF_DeleteBuffer)> buffer(
          TF_NewBufferFromString(bytes.data(), bytes.size()), TF_DeleteBuffer);
      std::unique_ptr<TF_ImportGraphDefOptions, decltype(&TF_DeleteImportGraphDefOptions)> opts(
          TF_NewImportGraphDefOptions(), TF_DeleteImportGraphDefOptions);
      TF_GraphImportGraphDef(graph.get(), buffer.get(), opts.get(), status.get());
      // A graph TensorFlow refuses (its op types were checked before), as when Python imports
      // the form.
      if (TF_GetCode(status.get()) != TF_OK) {
        return DataLoss(where_ + ": cannot import the graph: " + TF_Message(status.get()));
      }
    }
    auto output_of = [&](const std::string& tensor) {
      std::string name;
      int idx;
      ParseTensorName(tensor, &name, &idx);
      return TF_Output{TF_GraphOperationByName(graph.get(), name.c_str()), idx};
    };
    // Variable placeholder -> the variable's node (for its dtype and shape).
    std::unordered_map<std::string, int> variables;
    for (const auto& arg : args_) {
      const int n = arg.kind == FunctionArg::kState ? graph_.Find(arg.state) : -1;
      if (n >= 0 && (graph_.state[n] == StateKind::kRefVariable ||
                     graph_.state[n] == StateKind::kResourceVariable)) {
        variables[arg.placeholder + ":0"] = n;
      }
    }
    std::unordered_map<std::string, std::string> renamed;  // Loop tensor / ^op -> call output.
    std::vector<tensorflow::NodeDef> calls;
    for (int l = 0; l < num_loops; ++l) {
      Loop& loop = loops[l];
      std::vector<TF_Operation*> opers;
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (region[i] == l)
          opers.push_back(TF_GraphOperationByName(graph.get(), nodes[i].name().c_str()));
      }
      std::vector<TF_Output> inputs, outputs;
      for (const auto& t : loop.inputs) inputs.push_back(output_of(t));
      for (const auto& t : loop.outputs) outputs.push_back(output_of(t));
      const bool found =
          std::find(opers.begin(), opers.end(), nullptr) == opers.end() &&
          std::all_of(inputs.begin(), inputs.end(), [](TF_Output o) { return o.oper; }) &&
          std::all_of(outputs.begin(), outputs.end(), [](TF_Output o) { return o.oper; });
      if (!found) {
        return Internal(where_ + ": the TF1 while loop '" + loop_names[l] +
                        "' names an op its function form lacks");
      }
      std::string base = "hubcore_v1_while_";
      for (char c : loop_names[l]) base += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      TF_Function* function = TF_GraphToFunction(
          graph.get(), base.c_str(), /*append_hash_to_fn_name=*/1, static_cast<int>(opers.size()),
          opers.data(), static_cast<int>(inputs.size()), inputs.data(),
          static_cast<int>(outputs.size()), outputs.data(), nullptr, nullptr, nullptr,
          status.get());
      if (TF_GetCode(status.get()) != TF_OK) {
        return Unimplemented(where_ + ": cannot run the TF1 while loop '" + loop_names[l] +
                             "' as a function: " + TF_Message(status.get()));
      }
      std::unique_ptr<TF_Buffer, decltype(&TF_DeleteBuffer)> buffer(TF_NewBuffer(),
                                                                    TF_DeleteBuffer);
      TF_FunctionToFunctionDef(function, buffer.get(), status.get());
      TF_DeleteFunction(function);
      tensorflow::FunctionDef* fdef = result->mutable_library()->add_function();
      if (TF_GetCode(status.get()) != TF_OK ||
          !fdef->ParseFromArray(buffer->data, static_cast<int>(buffer->length))) {
        return Unimplemented(where_ + ": cannot run the TF1 while loop '" + loop_names[l] +
                             "' as a function: " + TF_Message(status.get()));
      }
      tensorflow::NodeDef call;
      loop.call = fdef->signature().name();
      call.set_name(loop.call);
      call.set_op("StatefulPartitionedCall");
      auto& attrs = *call.mutable_attr();
      attrs["f"].mutable_func()->set_name(fdef->signature().name());
      // Per input, the dtype and shape of the variable behind a resource handle (0 and unknown
      // for anything else): a variable's gradient has the shape of its value.
      auto* variable_types = attrs["_hubcore_value_types"].mutable_list();
      auto* variable_shapes = attrs["_hubcore_value_shapes"].mutable_list();
      for (size_t k = 0; k < inputs.size(); ++k) {
        call.add_input(loop.inputs[k]);
        attrs["Tin"].mutable_list()->add_type(
            static_cast<tensorflow::DataType>(TF_OperationOutputType(inputs[k])));
        auto variable = variables.find(loop.inputs[k]);
        const auto* node = variable == variables.end() ? nullptr : &graph_.node(variable->second);
        auto dtype = node ? node->attr().find("dtype") : attrs.end();
        auto shape = node ? node->attr().find("shape") : attrs.end();
        variable_types->add_i(node && dtype != node->attr().end() ? dtype->second.type() : 0);
        auto* value_shape = variable_shapes->add_shape();
        if (node && shape != node->attr().end()) {
          *value_shape = shape->second.shape();
        } else {
          value_shape->set_unknown_rank(true);
        }
      }
      for (const auto& c : loop.controls) call.add_input(c);
      for (size_t k = 0; k < outputs.size(); ++k) {
        attrs["Tout"].mutable_list()->add_type(
            static_cast<tensorflow::DataType>(TF_OperationOutputType(outputs[k])));
        renamed[loop.outputs[k]] = loop.call + ":" + std::to_string(k);
      }
      if (!attrs.count("Tin")) attrs["Tin"].mutable_list();
      if (!attrs.count("Tout")) attrs["Tout"].mutable_list();
      attrs["_gradient_op_type"].set_s(kLoopGradient);
      attrs["_hubcore_message"].set_s(
          where_ + ": the TF1 while loop '" + loop_names[l] +
          "' (tf.compat.v1.while_loop) cannot be differentiated in TensorFlow 2, which builds "
          "the gradients of TF1 while loops only in TF1 graphs; fine-tune it with "
          "hubcore.Module in a TF1 graph, or use a module exported with control flow v2");
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (region[i] == l) renamed["^" + nodes[i].name()] = "^" + loop.call;
      }
      calls.push_back(std::move(call));
    }
    // The ops outside the loops, the calls, outputs and targets read the calls instead.
    auto rewire = [&](tensorflow::NodeDef* node) {
      google::protobuf::RepeatedPtrField<std::string> inputs;
      for (const auto& input : node->input()) {
        auto it = renamed.find(input[0] == '^' ? input : Normalized(input));
        const std::string& value = it == renamed.end() ? input : it->second;
        if (value[0] != '^' || std::find(inputs.begin(), inputs.end(), value) == inputs.end()) {
          *inputs.Add() = value;
        }
      }
      node->mutable_input()->Swap(&inputs);
    };
    std::vector<tensorflow::NodeDef> kept;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (region[i] >= 0) continue;
      rewire(&nodes[i]);
      kept.push_back(std::move(nodes[i]));
    }
    for (auto& call : calls) {
      rewire(&call);
      kept.push_back(std::move(call));
    }
    nodes = std::move(kept);
    for (auto& [key, tensors] : out->outputs) {
      for (auto& tensor : tensors) {
        auto it = renamed.find(tensor);
        if (it != renamed.end()) tensor = it->second;
      }
    }
    std::vector<std::string> targets;
    for (const auto& target : out->targets) {
      auto it = renamed.find("^" + target);
      add_unique(&targets, it == renamed.end() ? target : it->second.substr(1));
    }
    out->targets = std::move(targets);
    return Status::OK();
  }

  // TF1 control-flow ops that no context describes cannot run in a tf.function (TF2's automatic
  // control dependencies and gradients need the context of each): refused, naming the op.
  Status CheckControlFlowCovered(const std::vector<tensorflow::NodeDef>& body,
                                 const std::vector<std::string>& cond_defs) const {
    std::unordered_set<std::string> in_conds;
    for (const auto& bytes : cond_defs) {
      internal::ContextSummary summary;
      if (internal::SummarizeContext("cond_context", bytes, &summary)) {
        in_conds.insert(summary.owned_ops.begin(), summary.owned_ops.end());
      }
    }
    for (const auto& node : body) {
      const std::string& op = node.op();
      if (op == "Enter" || op == "Exit" || op == "NextIteration" || op == "LoopCond") {
        return Unimplemented(where_ + ": op '" + node.name() + "' (" + op +
                             ") belongs to a TF1 while loop that the graph's while_context "
                             "collection does not describe; hubcore.load needs it to run the "
                             "loop");
      }
      auto type = node.attr().find("T");
      if (op == "Switch" && type != node.attr().end() &&
          type->second.type() == tensorflow::DT_RESOURCE && !in_conds.count(node.name())) {
        return Unimplemented(where_ + ": op '" + node.name() +
                             "' (Switch) belongs to a TF1 cond that the graph's cond_context "
                             "collection does not describe; hubcore.load needs it to order the "
                             "cond's resource ops");
      }
    }
    return Status::OK();
  }

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
    if (!graph_.function_names.empty()) {
      VisitFunctionRefs(node, [&](std::string* name) {
        auto it = graph_.function_names.find(*name);
        if (it != graph_.function_names.end()) *name = it->second;
      });
    }
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
  const std::string what_;
  const std::string where_;
  std::vector<FunctionArg> args_;
  std::unordered_map<std::string, std::string> input_args_;  // "node:i" -> placeholder.
  std::unordered_set<int> input_nodes_;
  std::unordered_map<int, std::string> cut_args_;  // State / asset node -> placeholder.
  std::unordered_set<int> value_reads_;
  std::unordered_set<std::string> value_switches_;  // Resource Switches turned value Switches.
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
      HUBCORE_RETURN_IF_ERROR(IndexVariant(data.saved_model.meta_graphs(i), data.variants[i],
                                           spec.path(), graph.get()));
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
  const std::string what = "signature '" + signature + "'";
  const std::string where = what + " of " + graph->where;
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
  return FormBuilder(*graph, request, what).Build(out);
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
  return FormBuilder(*graph, request, "initializer of '" + state + "'").Build(out);
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
  return FormBuilder(*graph, request, "regularization losses").Build(out);
}

}  // namespace hubcore
