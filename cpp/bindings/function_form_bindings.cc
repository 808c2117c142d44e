// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Bindings for hubcore::FunctionFormBuilder: function forms cross as a dict with GraphDef bytes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings_common.h"
#include "hubcore/function_form.h"

namespace py = pybind11;

namespace hubcore::python {
namespace {

py::dict FormToDict(const FunctionForm& form) {
  py::dict out;
  out["graph_def"] = py::bytes(form.graph_def);
  py::list args;
  for (const auto& arg : form.args) {
    py::dict a;
    a["kind"] = arg.kind == FunctionArg::kInput   ? "input"
                : arg.kind == FunctionArg::kState ? "state"
                                                  : "asset";
    a["placeholder"] = arg.placeholder;
    a["dtype"] = arg.dtype;
    a["input_key"] = arg.input_key;
    a["component"] = arg.component;
    a["state"] = arg.state;
    a["asset_path"] = arg.asset_path;
    args.append(a);
  }
  out["args"] = args;
  out["outputs"] = form.outputs;
  out["targets"] = form.targets;
  py::list cond_contexts;
  for (const auto& def : form.cond_contexts) cond_contexts.append(py::bytes(def));
  out["cond_contexts"] = cond_contexts;
  out["num_nodes"] = form.num_nodes;
  return out;
}

}  // namespace

void RegisterFunctionFormBindings(py::module_& m) {
  py::class_<FunctionFormBuilder, std::shared_ptr<FunctionFormBuilder>>(m, "FunctionFormBuilder")
      .def(py::init([](std::shared_ptr<ModuleSpec> spec) {
             return std::make_shared<FunctionFormBuilder>(std::shared_ptr<const ModuleSpec>(spec));
           }),
           py::arg("spec"))
      .def(
          "list_state",
          [](FunctionFormBuilder& self, const std::set<std::string>& tags) {
            std::vector<StateResource> state;
            RunWithoutGil([&] { return self.ListState(tags, &state); });
            py::list out;
            for (const auto& s : state) {
              out.append(py::make_tuple(s.node, s.is_variable, py::bytes(s.node_def)));
            }
            return out;
          },
          py::arg("tags"),
          "The variant's state ops in graph order: [(node, is_variable, node_def bytes)].")
      .def(
          "build_signature",
          [](FunctionFormBuilder& self, const std::set<std::string>& tags,
             const std::string& signature, bool run_update_ops) {
            FunctionForm form;
            RunWithoutGil(
                [&] { return self.BuildSignature(tags, signature, run_update_ops, &form); });
            return FormToDict(form);
          },
          py::arg("tags"), py::arg("signature"), py::arg("run_update_ops"),
          "A signature as a function form: dict(graph_def, args [dict(kind, placeholder, dtype, "
          "input_key, component, state, asset_path)], outputs {key: [tensor]}, targets, "
          "cond_contexts [CondContextDef bytes], num_nodes).")
      .def(
          "build_initializer",
          [](FunctionFormBuilder& self, const std::set<std::string>& tags,
             const std::string& state) {
            FunctionForm form;
            RunWithoutGil([&] { return self.BuildInitializer(tags, state, &form); });
            return FormToDict(form);
          },
          py::arg("tags"), py::arg("state"),
          "The table initializers acting on state op `state`, as a function form.")
      .def(
          "build_regularization_losses",
          [](FunctionFormBuilder& self, const std::set<std::string>& tags) {
            FunctionForm form;
            RunWithoutGil([&] { return self.BuildRegularizationLosses(tags, &form); });
            return FormToDict(form);
          },
          py::arg("tags"), "The regularization losses as a function form (outputs '0', '1', ...).");
}

}  // namespace hubcore::python
