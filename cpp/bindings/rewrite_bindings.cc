// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Bindings for hubcore::GraphRewriter: state and apply graphs cross as serialized bytes inside
// read-only result objects (StateGraph, ApplyGraph, InputMapping, OutputRef).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings_common.h"
#include "hubcore/graph_rewrite.h"

namespace py = pybind11;

namespace hubcore::python {
namespace {

std::vector<py::bytes> BytesList(const std::vector<std::string>& values) {
  return {values.begin(), values.end()};
}

std::map<std::string, std::vector<py::bytes>> BytesListsToDict(
    const std::map<std::string, std::vector<std::string>>& lists) {
  std::map<std::string, std::vector<py::bytes>> out;
  for (const auto& [key, values] : lists) out[key] = BytesList(values);
  return out;
}

// The result types, read-only: Python reads them once per instantiation or call.
void RegisterResultTypes(py::module_& m) {
  py::class_<StateGraph>(m, "StateGraph", "What a hub.Module instance imports for its state.")
      .def_property_readonly(
          "graph_def", [](const StateGraph& g) { return py::bytes(g.graph_def); },
          "Serialized GraphDef, names under the instance scope.")
      .def_readonly("node_lists", &StateGraph::node_lists,
                    "node_list collections (table_initializer, asset_filepaths, ...).")
      .def_property_readonly(
          "bytes_lists", [](const StateGraph& g) { return BytesListsToDict(g.bytes_lists); },
          "bytes_list collections: scoped VariableDefs, cond/while context defs.")
      .def_readonly("colocated_nodes", &StateGraph::colocated_nodes,
                    "Nodes that keep a `_class` attribute.")
      .def_property_readonly(
          "function_library", [](const StateGraph& g) { return py::bytes(g.function_library); },
          "Serialized FunctionDefLibrary, b'' when the graph has none.")
      .def_readonly("num_nodes", &StateGraph::num_nodes);

  py::class_<InputMapping>(m, "InputMapping", "One input-map entry of an apply graph.")
      .def_readonly("key", &InputMapping::key,
                    "How the GraphDef names the tensor ('module/w:0', '^module/w' for control).")
      .def_readonly("is_state", &InputMapping::is_state,
                    "True: map to the caller-graph tensor or op named `key` (minus '^').")
      .def_readonly("input_key", &InputMapping::input_key, "Otherwise: the signature input ...")
      .def_readonly("component", &InputMapping::component, "... and its component.");

  py::class_<OutputRef> output_ref(m, "OutputRef",
                                   "Where a signature output component comes from.");
  py::enum_<OutputRef::Kind>(output_ref, "Kind")
      .value("IMPORTED", OutputRef::kImported, "A tensor of the imported apply graph.")
      .value("INPUT", OutputRef::kInput, "A signature input passed through.")
      .value("STATE", OutputRef::kState, "A state tensor of the instance.");
  output_ref.def_readonly("kind", &OutputRef::kind)
      .def_readonly("tensor", &OutputRef::tensor, "IMPORTED / STATE: the tensor name.")
      .def_readonly("input_key", &OutputRef::input_key, "INPUT: the signature input ...")
      .def_readonly("component", &OutputRef::component, "... and its component.");

  py::class_<ApplyGraph>(m, "ApplyGraph", "What one signature call of an instance imports.")
      .def_property_readonly(
          "graph_def", [](const ApplyGraph& g) { return py::bytes(g.graph_def); },
          "Serialized GraphDef, names under the apply scope.")
      .def_readonly("input_map", &ApplyGraph::input_map)
      .def_readonly("outputs", &ApplyGraph::outputs, "Output key -> its components.")
      .def_readonly("update_ops", &ApplyGraph::update_ops, "Scoped update ops (trainable only).")
      .def_readonly("asset_tensors", &ApplyGraph::asset_tensors, "Scoped asset Const tensors.")
      .def_property_readonly(
          "cond_context", [](const ApplyGraph& g) { return BytesList(g.context_defs); },
          "Serialized CondContextDefs (module-relative names).")
      .def_property_readonly(
          "while_context", [](const ApplyGraph& g) { return BytesList(g.while_context_defs); },
          "Serialized WhileContextDefs (module-relative names).")
      .def_readonly("colocated_nodes", &ApplyGraph::colocated_nodes,
                    "Nodes that keep a `_class` attribute.")
      .def_property_readonly(
          "function_library", [](const ApplyGraph& g) { return py::bytes(g.function_library); },
          "Serialized FunctionDefLibrary, b'' when the graph has none.")
      .def_readonly("num_nodes", &ApplyGraph::num_nodes);
}

}  // namespace

void RegisterRewriteBindings(py::module_& m) {
  RegisterResultTypes(m);
  py::class_<GraphRewriter, std::shared_ptr<GraphRewriter>>(m, "GraphRewriter")
      .def(py::init([](std::shared_ptr<ModuleSpec> spec) {
             return std::make_shared<GraphRewriter>(std::shared_ptr<const ModuleSpec>(spec));
           }),
           py::arg("spec"))
      .def(
          "build_state_graph",
          [](GraphRewriter& self, const std::set<std::string>& tags, const std::string& scope,
             bool trainable, const std::string& checkpoint_prefix) {
            StateGraphOptions options;
            options.scope = scope;
            options.trainable = trainable;
            options.checkpoint_prefix = checkpoint_prefix;
            StateGraph graph;
            RunWithoutGil([&] { return self.BuildStateGraph(tags, options, &graph); });
            return graph;
          },
          py::arg("tags"), py::arg("scope"), py::arg("trainable"), py::arg("checkpoint_prefix"),
          "Builds the state graph of an instance.")
      .def(
          "build_apply_graph",
          [](GraphRewriter& self, const std::set<std::string>& tags, const std::string& signature,
             const std::string& scope, const std::string& state_scope, bool trainable,
             const std::map<std::string, std::vector<std::string>>& input_colocation) {
            ApplyGraphOptions options;
            options.scope = scope;
            options.state_scope = state_scope;
            options.trainable = trainable;
            options.input_colocation = input_colocation;
            ApplyGraph graph;
            RunWithoutGil([&] { return self.BuildApplyGraph(tags, signature, options, &graph); });
            return graph;
          },
          py::arg("tags"), py::arg("signature"), py::arg("scope"), py::arg("state_scope"),
          py::arg("trainable"), py::arg("input_colocation"),
          "Builds the apply graph of a signature call.");
}

}  // namespace hubcore::python
