// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Bindings for hubcore::ModuleSpec and its description structs (read-only views).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings_common.h"
#include "hubcore/module_spec.h"
#include "hubcore/module_writer.h"
#include "hubcore/op_policy.h"

namespace py = pybind11;

namespace hubcore::python {
namespace {

py::bytes Bytes(const std::string& s) { return py::bytes(s); }

}  // namespace

void RegisterSpecBindings(py::module_& m) {
  py::enum_<TensorKind>(m, "TensorKind")
      .value("DENSE", TensorKind::kDense)
      .value("SPARSE", TensorKind::kSparse)
      .value("RAGGED", TensorKind::kRagged)
      .value("COMPOSITE", TensorKind::kComposite);

  py::class_<TensorShape>(m, "TensorShape")
      .def_readonly("unknown_rank", &TensorShape::unknown_rank)
      .def_readonly("dims", &TensorShape::dims)
      .def("__repr__", &TensorShape::ToString);

  py::class_<TensorInfo>(m, "TensorInfo")
      .def_readonly("key", &TensorInfo::key)
      .def_readonly("kind", &TensorInfo::kind)
      .def_readonly("dtype", &TensorInfo::dtype)
      .def_readonly("shape", &TensorInfo::shape)
      .def_readonly("tensor_names", &TensorInfo::tensor_names)
      .def_readonly("ragged_rank", &TensorInfo::ragged_rank)
      .def_readonly("row_splits_dtype", &TensorInfo::row_splits_dtype)
      .def_property_readonly("type_spec_proto",
                             [](const TensorInfo& t) { return Bytes(t.type_spec_proto); })
      .def_readonly("type_spec_class_name", &TensorInfo::type_spec_class_name);

  py::class_<SignatureInfo>(m, "SignatureInfo")
      .def_readonly("name", &SignatureInfo::name)
      .def_readonly("inputs", &SignatureInfo::inputs)
      .def_readonly("outputs", &SignatureInfo::outputs);

  py::class_<VariablePartition>(m, "VariablePartition")
      .def_readonly("node_name", &VariablePartition::node_name)
      .def_readonly("offset", &VariablePartition::offset)
      .def_readonly("shape", &VariablePartition::shape);

  py::class_<VariableInfo>(m, "VariableInfo")
      .def_readonly("name", &VariableInfo::name)
      .def_readonly("dtype", &VariableInfo::dtype)
      .def_readonly("shape", &VariableInfo::shape)
      .def_readonly("trainable", &VariableInfo::trainable)
      .def_readonly("resource", &VariableInfo::resource)
      .def_readonly("partitions", &VariableInfo::partitions)
      .def_property_readonly("num_bytes", &VariableInfo::num_bytes);

  py::class_<AssetInfo>(m, "AssetInfo")
      .def_readonly("tensor_name", &AssetInfo::tensor_name)
      .def_readonly("filename", &AssetInfo::filename)
      .def_readonly("path", &AssetInfo::path);

  py::class_<GraphVariant>(m, "GraphVariant")
      .def_readonly("tags", &GraphVariant::tags)
      .def_readonly("signatures", &GraphVariant::signatures)
      .def_property_readonly("attached_messages",
                             [](const GraphVariant& v) {
                               py::dict out;
                               for (const auto& [k, value] : v.attached_messages)
                                 out[py::str(k)] = Bytes(value);
                               return out;
                             })
      .def_readonly("variables", &GraphVariant::variables)
      .def_readonly("assets", &GraphVariant::assets)
      .def_readonly("collection_keys", &GraphVariant::collection_keys)
      .def_readonly("num_nodes", &GraphVariant::num_nodes);

  py::class_<CheckpointEntry>(m, "CheckpointEntry")
      .def_readonly("key", &CheckpointEntry::key)
      .def_readonly("dtype", &CheckpointEntry::dtype)
      .def_readonly("shape", &CheckpointEntry::shape)
      .def_readonly("sliced", &CheckpointEntry::sliced);

  py::enum_<OpEffect>(m, "OpEffect")
      .value("COMPUTE", OpEffect::kCompute)
      .value("ASSET_READ", OpEffect::kAssetRead)
      .value("FILE", OpEffect::kFile)
      .value("NETWORK", OpEffect::kNetwork)
      .value("PROCESS", OpEffect::kProcess)
      .value("UNKNOWN", OpEffect::kUnknown);

  py::class_<OpTypeUse>(m, "OpTypeUse")
      .def_readonly("op", &OpTypeUse::op)
      .def_readonly("effect", &OpTypeUse::effect)
      .def_readonly("count", &OpTypeUse::count)
      .def_readonly("first_node", &OpTypeUse::first_node)
      .def_property_readonly(
          "effect_name", [](const OpTypeUse& u) { return std::string(OpEffectName(u.effect)); });

  py::class_<ModuleSpec, std::shared_ptr<ModuleSpec>>(m, "ModuleSpec")
      .def_static(
          "load",
          [](const std::string& path) {
            std::unique_ptr<ModuleSpec> spec;
            RunWithoutGil([&] { return ModuleSpec::Load(path, &spec); });
            return std::shared_ptr<ModuleSpec>(std::move(spec));
          },
          py::arg("path"), "Reads and validates the module directory at `path`.")
      .def_static(
          "from_saved_model_bytes",
          [](py::bytes saved_model, const std::string& module_dir, bool has_checkpoint) {
            std::string bytes = saved_model;
            std::unique_ptr<ModuleSpec> spec;
            ThrowIfError(ModuleSpec::FromSavedModelBytes(bytes, module_dir, has_checkpoint, &spec));
            return std::shared_ptr<ModuleSpec>(std::move(spec));
          },
          py::arg("saved_model"), py::arg("module_dir") = "", py::arg("has_checkpoint") = false)
      .def_property_readonly("path", &ModuleSpec::path)
      .def_property_readonly("format_version", &ModuleSpec::format_version)
      .def_property_readonly("variants", &ModuleSpec::variants,
                             py::return_value_policy::reference_internal)
      .def_property_readonly("checkpoint_prefix", &ModuleSpec::checkpoint_prefix)
      .def_property_readonly("checkpoint_entries", &ModuleSpec::checkpoint_entries,
                             py::return_value_policy::reference_internal)
      .def("find_variant", &ModuleSpec::FindVariant, py::arg("tags"),
           py::return_value_policy::reference_internal)
      .def("saved_model_bytes",
           [](const ModuleSpec& spec) { return Bytes(spec.SerializedSavedModel()); })
      .def(
          "op_types",
          [](const ModuleSpec& spec, const std::set<std::string>& tags) {
            std::vector<OpTypeUse> uses;
            ThrowIfError(ListOpTypes(spec, tags, &uses));
            return uses;
          },
          py::arg("tags"), "The op types the variant uses (graph and function library).")
      .def(
          "check_safe_mode",
          [](const ModuleSpec& spec, const std::set<std::string>& tags) {
            ThrowIfError(CheckSafeMode(spec, tags));
          },
          py::arg("tags"),
          "Raises UnsafeModuleError naming the node and op when the variant uses an op outside "
          "the safe-mode allowlist.");
  m.def("safe_mode_allowlist", &SafeModeAllowlist, "The op types safe mode allows, sorted.");

  m.def("dtype_name", &DataTypeName, py::arg("dtype"),
        "Python-style name of a TF_DataType value, without importing TensorFlow.");
  m.def(
      "serialize_module_def",
      [](int format, const std::vector<std::string>& features) {
        return Bytes(SerializeModuleDefBytes(format, features));
      },
      py::arg("format") = 3, py::arg("required_features") = std::vector<std::string>{});
  m.def("serialize_attachment", [](const std::string& key, py::bytes value) {
    return Bytes(SerializeAttachmentBytes(key, value));
  });

  // ---- Module export (hubcore/module_writer.h) ----
  m.def(
      "build_export_saved_model",
      [](const ModuleSpec& spec) {
        std::string bytes;
        std::vector<AssetCopy> assets;
        ThrowIfError(BuildExportSavedModel(spec, &bytes, &assets));
        py::list copies;
        for (const auto& a : assets) copies.append(py::make_tuple(a.source, a.filename));
        return py::make_tuple(Bytes(bytes), copies);
      },
      py::arg("spec"),
      "(saved_model.pb bytes, [(source, asset filename)]) of an export of `spec`.");
  m.def(
      "write_module_files",
      [](const ModuleSpec& spec, const std::string& dir) {
        RunWithoutGil([&] { return WriteModuleFiles(spec, dir); });
      },
      py::arg("spec"), py::arg("dir"),
      "Writes assets/, an empty variables/, saved_model.pb and tfhub_module.pb into `dir`.");
  m.def(
      "create_export_temp_dir",
      [](const std::string& path) {
        std::string tmp;
        ThrowIfError(CreateExportTempDir(path, &tmp));
        return tmp;
      },
      py::arg("path"), "Checks `path` is free and creates `<path>.tmp-<hex>` next to it.");
  m.def(
      "commit_export_dir",
      [](const std::string& temp_dir, const std::string& path) {
        ThrowIfError(CommitExportDir(temp_dir, path));
      },
      py::arg("temp_dir"), py::arg("path"));
  m.def("remove_export_dir", &RemoveExportDir, py::arg("dir"));
}

}  // namespace hubcore::python
