// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Bindings for hubcore::GraphRewriter: state and apply graphs cross as serialized bytes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings_common.h"
#include "hubcore/graph_rewrite.h"

namespace py = pybind11;

namespace hubcore::python {
namespace {

py::dict BytesListsToDict(const std::map<std::string, std::vector<std::string>>& lists) {
  py::dict out;
  for (const auto& [key, values] : lists) {
    py::list items;
    for (const auto& v : values) items.append(py::bytes(v));
    out[py::str(key)] = items;
  }
  return out;
}

py::list BytesList(const std::vector<std::string>& values) {
  py::list items;
  for (const auto& v : values) items.append(py::bytes(v));
  return items;
}

}  // namespace

void RegisterRewriteBindings(py::module_& m) {
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
            py::dict out;
            out["graph_def"] = py::bytes(graph.graph_def);
            out["node_lists"] = graph.node_lists;
            out["bytes_lists"] = BytesListsToDict(graph.bytes_lists);
            out["colocated_nodes"] = graph.colocated_nodes;
            out["function_library"] = py::bytes(graph.function_library);
            out["num_nodes"] = graph.num_nodes;
            return out;
          },
          py::arg("tags"), py::arg("scope"), py::arg("trainable"), py::arg("checkpoint_prefix"),
          "Builds the state graph of an instance; returns a dict (graph_def bytes, "
          "node_lists, bytes_lists, colocated_nodes, num_nodes).")
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
            py::dict out;
            out["graph_def"] = py::bytes(graph.graph_def);
            py::list input_map;
            for (const auto& m : graph.input_map) {
              input_map.append(py::make_tuple(m.key, m.is_state, m.input_key, m.component));
            }
            out["input_map"] = input_map;
            py::dict outputs;
            for (const auto& [key, refs] : graph.outputs) {
              py::list items;
              for (const auto& r : refs) {
                items.append(
                    py::make_tuple(static_cast<int>(r.kind), r.tensor, r.input_key, r.component));
              }
              outputs[py::str(key)] = items;
            }
            out["outputs"] = outputs;
            out["update_ops"] = graph.update_ops;
            out["asset_tensors"] = graph.asset_tensors;
            out["cond_context"] = BytesList(graph.context_defs);
            out["while_context"] = BytesList(graph.while_context_defs);
            out["colocated_nodes"] = graph.colocated_nodes;
            out["function_library"] = py::bytes(graph.function_library);
            out["num_nodes"] = graph.num_nodes;
            return out;
          },
          py::arg("tags"), py::arg("signature"), py::arg("scope"), py::arg("state_scope"),
          py::arg("trainable"), py::arg("input_colocation"),
          "Builds the apply graph of a signature call; returns a dict (graph_def bytes, "
          "input_map [(key, is_state, input_key, component)], outputs {key: [(kind, tensor, "
          "input_key, component)]}, update_ops, asset_tensors, cond_context, while_context, "
          "colocated_nodes, num_nodes).");
}

}  // namespace hubcore::python
