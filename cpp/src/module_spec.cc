// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Reading and validating a TF1 Hub module directory (see docs/format.md).
#include "hubcore/module_spec.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "file_checks.h"
#include "module_format.h"
#include "module_spec_data.h"
#include "tensorflow/c/tf_datatype.h"
#include "tensorflow/core/framework/function.pb.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/framework/node_def_util.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_def.pb.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/framework/tensor_shape.pb.h"
#include "tensorflow/core/framework/types.pb.h"
#include "tensorflow/core/framework/variable.pb.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "tensorflow/core/protobuf/struct.pb.h"
#include "tensorflow/core/util/tensor_bundle/tensor_bundle.h"

namespace fs = std::filesystem;

namespace hubcore {
namespace internal {

void ParseTensorName(const std::string& name, std::string* node, int* index) {
  if (!name.empty() && name[0] == '^') {
    *node = name.substr(1);
    *index = -1;
    return;
  }
  const size_t colon = name.rfind(':');
  if (colon != std::string::npos && colon + 1 < name.size() &&
      std::all_of(name.begin() + colon + 1, name.end(), ::isdigit)) {
    *node = name.substr(0, colon);
    *index = std::atoi(name.c_str() + colon + 1);
  } else {
    *node = name;
    *index = 0;
  }
}

Status ReadCheckpointEntries(const std::string& prefix, std::vector<CheckpointEntry>* entries) {
  const std::string index = prefix + ".index";
  // BundleReader would block on a FIFO and read a device forever: only regular files get to it.
  HUBCORE_RETURN_IF_ERROR(CheckRegularFile(index, UINT64_MAX));
  tensorflow::BundleReader reader(tensorflow::Env::Default(), prefix);
  if (!reader.status().ok()) {
    return DataLoss("Cannot read checkpoint " + index + ": " +
                    std::string(reader.status().message()));
  }
  int num_shards = 1;
  std::vector<uint64_t> shard_bytes;  // Bytes each data shard must hold, by shard id.
  entries->clear();
  for (reader.Seek(""); reader.Valid(); reader.Next()) {
    const std::string key(reader.key());
    const auto raw = reader.value();
    if (key.empty()) {
      tensorflow::BundleHeaderProto header;
      if (!header.ParseFromArray(raw.data(), static_cast<int>(raw.size())) ||
          header.num_shards() < 1 || header.num_shards() > 100000) {
        return DataLoss("Cannot read checkpoint " + index + ": bad header");
      }
      num_shards = header.num_shards();
      continue;
    }
    tensorflow::BundleEntryProto entry;
    if (!entry.ParseFromArray(raw.data(), static_cast<int>(raw.size()))) {
      return DataLoss("Cannot read checkpoint " + index + ": bad entry '" + key + "'");
    }
    if (entry.shard_id() < 0 || entry.shard_id() >= num_shards || entry.offset() < 0 ||
        entry.size() < 0 || entry.offset() > INT64_MAX - entry.size()) {
      return DataLoss("Cannot read checkpoint " + index + ": entry '" + key +
                      "' points outside the data shards");
    }
    if (shard_bytes.size() <= static_cast<size_t>(entry.shard_id())) {
      shard_bytes.resize(entry.shard_id() + 1, 0);
    }
    shard_bytes[entry.shard_id()] =
        std::max<uint64_t>(shard_bytes[entry.shard_id()], entry.offset() + entry.size());
    // Per-slice entries of partitioned variables have binary keys starting with a NUL byte; the
    // variable appears once more under its full name.
    if (key[0] == '\0') continue;
    CheckpointEntry e;
    e.key = key;
    e.dtype = entry.dtype();
    for (const auto& dim : entry.shape().dim()) e.shape.push_back(dim.size());
    e.sliced = entry.slices_size() > 0;
    entries->push_back(std::move(e));
  }
  // A missing or short data shard would otherwise only show when a variable is restored.
  for (size_t shard = 0; shard < shard_bytes.size(); ++shard) {
    char suffix[64];
    std::snprintf(suffix, sizeof(suffix), ".data-%05d-of-%05d", static_cast<int>(shard),
                  num_shards);
    const std::string data = prefix + suffix;
    uint64_t size = 0;
    Status s = CheckRegularFile(data, UINT64_MAX, &size);
    if (s.code() == StatusCode::kNotFound) {
      return DataLoss("Checkpoint data shard " + data + " named by " + index + " is missing");
    }
    HUBCORE_RETURN_IF_ERROR(s);
    if (size < shard_bytes[shard]) {
      return DataLoss("Checkpoint data shard " + data + " is truncated: it has " +
                      std::to_string(size) + " bytes, the index " + index + " needs " +
                      std::to_string(shard_bytes[shard]));
    }
  }
  return Status::OK();
}

int FindMetaGraphIndex(const ModuleSpecData& data, const std::set<std::string>& tags) {
  for (size_t i = 0; i < data.variants.size(); ++i) {
    if (data.variants[i].tags == tags) return static_cast<int>(i);
  }
  return -1;
}

Status FindVariant(const ModuleSpecData& data, const std::set<std::string>& tags, int* index) {
  *index = FindMetaGraphIndex(data, tags);
  if (*index >= 0) return Status::OK();
  GraphVariant probe;
  probe.tags = tags;
  std::string known;
  for (const auto& v : data.variants) known += (known.empty() ? "" : ", ") + v.TagsToString();
  return VariantNotFound("Module " + data.path + " has no graph variant with tags " +
                         probe.TagsToString() + "; its variants have tags: " + known +
                         ". Pass the tags of one of them.");
}

namespace {

// Collections a TF1 Hub module may carry; anything else made tensorflow_hub refuse the module, so
// hubcore refuses it too (and never writes one).
const std::unordered_set<std::string>& AllowedCollections() {
  static const auto* keys = new std::unordered_set<std::string>{
      "variables",     "trainable_variables",   "model_variables", "table_initializer",
      "update_ops",    "regularization_losses", "asset_filepaths", "cond_context",
      "while_context", kAttachmentsCollection};
  return *keys;
}

TensorShape ShapeFromProto(const tensorflow::TensorShapeProto& proto) {
  TensorShape shape;
  shape.unknown_rank = proto.unknown_rank();
  if (!shape.unknown_rank) {
    for (const auto& dim : proto.dim()) shape.dims.push_back(dim.size());
  }
  return shape;
}

std::vector<int64_t> DimsFromProto(const tensorflow::TensorShapeProto& proto) {
  std::vector<int64_t> dims;
  for (const auto& dim : proto.dim()) dims.push_back(dim.size());
  return dims;
}

class VariantBuilder {
 public:
  VariantBuilder(tensorflow::MetaGraphDef* meta_graph, const std::string& module_dir,
                 const std::string& where)
      : meta_graph_(meta_graph), module_dir_(module_dir), where_(where) {
    const auto& nodes = meta_graph_->graph_def().node();
    for (int i = 0; i < nodes.size(); ++i) node_index_[nodes[i].name()] = i;
  }

  // A malformed graph is a corrupt module when read from a directory, and a bad argument when
  // the caller passed the SavedModel in memory (create_module_spec).
  Status Malformed(std::string message) const {
    return module_dir_.empty() ? InvalidArgument(std::move(message)) : DataLoss(std::move(message));
  }

  Status Build(GraphVariant* variant) {
    const auto& info = meta_graph_->meta_info_def();
    variant->tags = std::set<std::string>(info.tags().begin(), info.tags().end());
    variant->num_nodes = meta_graph_->graph_def().node_size();
    HUBCORE_RETURN_IF_ERROR(ResolveAssets());
    HUBCORE_RETURN_IF_ERROR(CheckCollections(variant));
    HUBCORE_RETURN_IF_ERROR(ReadSignatures(variant));
    HUBCORE_RETURN_IF_ERROR(ReadAttachments(variant));
    HUBCORE_RETURN_IF_ERROR(ReadVariables(variant));
    HUBCORE_RETURN_IF_ERROR(ReadAssets(variant));
    return Status::OK();
  }

 private:
  tensorflow::NodeDef* FindNode(const std::string& tensor_name) {
    std::string node;
    int index;
    ParseTensorName(tensor_name, &node, &index);
    auto it = node_index_.find(node);
    if (it == node_index_.end()) return nullptr;
    return meta_graph_->mutable_graph_def()->mutable_node(it->second);
  }

  // An asset node must be a scalar string Const holding exactly one path.
  Status AssetConst(const std::string& tensor_name, tensorflow::TensorProto** value) {
    tensorflow::NodeDef* node = FindNode(tensor_name);
    if (node == nullptr) {
      return DataLoss(where_ + ": asset tensor '" + tensor_name + "' is not in the graph");
    }
    auto attr = node->mutable_attr()->find("value");
    if (node->op() != "Const" || attr == node->mutable_attr()->end() ||
        attr->second.tensor().dtype() != tensorflow::DT_STRING ||
        attr->second.tensor().string_val_size() != 1) {
      return Malformed(where_ + ": asset node '" + node->name() +
                       "' must be a scalar string Const with one value");
    }
    *value = attr->second.mutable_tensor();
    return Status::OK();
  }

  // An asset must be a regular file within the size limit whose real path (symlinks resolved) is
  // inside the module directory: a table must never be initialized from /etc/passwd.
  Status CheckAssetFile(const fs::path& path) {
    std::error_code ec;
    const fs::path real = fs::canonical(path, ec);
    if (ec) {
      return DataLoss(where_ + ": asset file " + path.string() + " is missing or unreadable (" +
                      ec.message() + ")");
    }
    const fs::path root = fs::canonical(module_dir_, ec);
    const fs::path inside = real.lexically_relative(root);
    if (ec || inside.empty() || *inside.begin() == "..") {
      return DataLoss(where_ + ": asset file " + path.string() + " resolves to " + real.string() +
                      ", outside the module directory");
    }
    Status s = CheckRegularFile(path.string(), MaxAssetBytes());
    if (!s.ok()) return DataLoss(where_ + ": asset: " + s.message());
    return Status::OK();
  }

  // Points each asset Const at <module>/assets/<filename>, refusing names that escape assets/.
  Status ResolveAssets() {
    auto* collections = meta_graph_->mutable_collection_def();
    auto it = collections->find(kAssetsCollection);
    if (it == collections->end()) return Status::OK();
    if (!it->second.has_any_list()) {
      return DataLoss(where_ + ": collection saved_model_assets is not an any_list");
    }
    const fs::path assets_dir = fs::path(module_dir_) / kAssetsDir;
    for (const auto& any : it->second.any_list().value()) {
      tensorflow::AssetFileDef asset;
      if (!any.UnpackTo(&asset)) {
        return DataLoss(where_ + ": saved_model_assets holds a value that is not an AssetFileDef");
      }
      const std::string& filename = asset.filename();
      const fs::path relative = fs::path(filename).lexically_normal();
      if (filename.empty() || relative.is_absolute() || relative.empty() ||
          *relative.begin() == ".." || filename.find('\0') != std::string::npos) {
        return Malformed(where_ + ": asset filename '" + filename +
                         "' points outside the module's assets/ directory");
      }
      tensorflow::TensorProto* value;
      HUBCORE_RETURN_IF_ERROR(AssetConst(asset.tensor_info().name(), &value));
      if (!module_dir_.empty()) {
        const fs::path path = assets_dir / relative;
        HUBCORE_RETURN_IF_ERROR(CheckAssetFile(path));
        value->set_string_val(0, path.string());
      }
    }
    collections->erase(it);
    return Status::OK();
  }

  Status CheckCollections(GraphVariant* variant) {
    std::vector<std::string> unsupported;
    for (const auto& [key, unused] : meta_graph_->collection_def()) {
      variant->collection_keys.push_back(key);
      if (!AllowedCollections().count(key)) unsupported.push_back(key);
    }
    std::sort(variant->collection_keys.begin(), variant->collection_keys.end());
    if (!unsupported.empty()) {
      std::sort(unsupported.begin(), unsupported.end());
      std::string names;
      for (const auto& k : unsupported) names += (names.empty() ? "'" : ", '") + k + "'";
      return Unimplemented(where_ + ": Unsupported collections in graph: [" + names +
                           "]. Use create_module_spec(..., drop_collections=[...]) when creating "
                           "the module.");
    }
    return Status::OK();
  }

  Status CheckTensor(const std::string& name, const std::string& what) {
    const tensorflow::NodeDef* node = FindNode(name);
    if (node == nullptr) {
      return DataLoss(where_ + ": " + what + " refers to tensor '" + name +
                      "', which is not in the graph (corrupt saved_model.pb?)");
    }
    std::string node_name;
    int index = 0;
    ParseTensorName(name, &node_name, &index);
    // The op's output count, when TensorFlow knows the op (functions and custom ops are checked
    // when the graph is imported).
    const tensorflow::OpDef* op_def = nullptr;
    int num_outputs = 0;
    if (index < 0 || (tensorflow::OpRegistry::Global()->LookUpOpDef(node->op(), &op_def).ok() &&
                      tensorflow::NumOutputsForNode(*node, *op_def, &num_outputs).ok() &&
                      index >= num_outputs)) {
      return DataLoss(where_ + ": " + what + " refers to tensor '" + name + "', but node '" +
                      node->name() + "' (" + node->op() + ") has " + std::to_string(num_outputs) +
                      " outputs (corrupt saved_model.pb?)");
    }
    return Status::OK();
  }

  // A dtype the format can carry in a signature: a known, non-reference TensorFlow type.
  Status CheckDtype(int dtype, const std::string& what) {
    if (dtype == tensorflow::DT_INVALID || !tensorflow::DataType_IsValid(dtype) ||
        dtype >= tensorflow::DT_FLOAT_REF) {
      return DataLoss(where_ + ": " + what + " has an invalid dtype (" + std::to_string(dtype) +
                      ")");
    }
    return Status::OK();
  }

  // A shape TensorFlow can build a placeholder for: dims of -1 (unknown) or more, at most
  // kMaxRank of them, and at most 2**63 - 1 elements in the known ones.
  Status CheckShape(const TensorShape& shape, const std::string& what) {
    if (shape.unknown_rank) return Status::OK();
    constexpr size_t kMaxRank = 254;  // tensorflow::TensorShape::MaxDimensions()
    if (shape.dims.size() > kMaxRank) {
      return DataLoss(where_ + ": " + what + " has rank " + std::to_string(shape.dims.size()) +
                      ", above TensorFlow's " + std::to_string(kMaxRank));
    }
    int64_t elements = 1;
    for (int64_t dim : shape.dims) {
      if (dim < -1) {
        return DataLoss(where_ + ": " + what + " has shape " + shape.ToString() +
                        " with a negative dimension");
      }
      if (dim < 0) continue;
      if (dim > 0 && elements > INT64_MAX / dim) {
        return DataLoss(where_ + ": " + what + " has shape " + shape.ToString() +
                        ", more than 2**63 - 1 elements");
      }
      elements *= dim;
    }
    return Status::OK();
  }

  Status DecodeTensorInfo(const std::string& key, const tensorflow::TensorInfo& proto,
                          const std::string& what, TensorInfo* info) {
    info->key = key;
    info->dtype = proto.dtype();
    info->shape = ShapeFromProto(proto.tensor_shape());
    switch (proto.encoding_case()) {
      case tensorflow::TensorInfo::kName:
        info->kind = TensorKind::kDense;
        info->tensor_names = {proto.name()};
        break;
      case tensorflow::TensorInfo::kCooSparse:
        info->kind = TensorKind::kSparse;
        info->tensor_names = {proto.coo_sparse().values_tensor_name(),
                              proto.coo_sparse().indices_tensor_name(),
                              proto.coo_sparse().dense_shape_tensor_name()};
        break;
      case tensorflow::TensorInfo::kCompositeTensor: {
        const auto& composite = proto.composite_tensor();
        const auto& spec = composite.type_spec();
        info->type_spec_proto = spec.SerializeAsString();
        info->type_spec_class_name = spec.type_spec_class_name();
        for (const auto& component : composite.components()) {
          info->tensor_names.push_back(component.name());
        }
        info->kind = TensorKind::kComposite;
        if (spec.type_spec_class() == tensorflow::TypeSpecProto::RAGGED_TENSOR_SPEC) {
          // type_state = (shape, dtype, ragged_rank, row_splits_dtype).
          const auto& state = spec.type_state().tuple_value().values();
          if (state.size() < 4) {
            return DataLoss(where_ + ": " + what + " has a malformed RaggedTensorSpec");
          }
          info->kind = TensorKind::kRagged;
          info->shape = ShapeFromProto(state[0].tensor_shape_value());
          info->dtype = state[1].tensor_dtype_value();
          info->ragged_rank = static_cast<int>(state[2].int64_value());
          info->row_splits_dtype = state[3].tensor_dtype_value();
          if (info->ragged_rank < 0 && !info->shape.unknown_rank) {
            info->ragged_rank = static_cast<int>(info->shape.dims.size()) - 1;
          }
          HUBCORE_RETURN_IF_ERROR(CheckDtype(info->dtype, what));
          if (info->row_splits_dtype != tensorflow::DT_INT32 &&
              info->row_splits_dtype != tensorflow::DT_INT64) {
            return DataLoss(where_ + ": " + what + " has row_splits dtype " +
                            std::to_string(info->row_splits_dtype) + ", not int32 or int64");
          }
          const int rank = info->shape.unknown_rank ? -1 : info->shape.dims.size();
          if (info->ragged_rank < 0 || (rank >= 0 && info->ragged_rank >= rank)) {
            return DataLoss(where_ + ": " + what + " has ragged_rank " +
                            std::to_string(info->ragged_rank) + " for rank " +
                            (rank < 0 ? std::string("unknown") : std::to_string(rank)) +
                            " (it must be at least 0 and below the rank)");
          }
          if (static_cast<int>(info->tensor_names.size()) != 1 + info->ragged_rank) {
            return DataLoss(where_ + ": " + what + " has " +
                            std::to_string(info->tensor_names.size()) +
                            " components for ragged_rank " + std::to_string(info->ragged_rank));
          }
        }
        break;
      }
      default:
        return DataLoss(where_ + ": " + what + " has no tensor encoding");
    }
    if (info->kind == TensorKind::kDense || info->kind == TensorKind::kSparse) {
      HUBCORE_RETURN_IF_ERROR(CheckDtype(info->dtype, what));
    }
    HUBCORE_RETURN_IF_ERROR(CheckShape(info->shape, what));
    for (const auto& name : info->tensor_names) HUBCORE_RETURN_IF_ERROR(CheckTensor(name, what));
    return Status::OK();
  }

  Status ReadSignatures(GraphVariant* variant) {
    for (const auto& [name, def] : meta_graph_->signature_def()) {
      SignatureInfo sig;
      sig.name = name;
      for (const auto& [key, proto] : def.inputs()) {
        TensorInfo info;
        HUBCORE_RETURN_IF_ERROR(
            DecodeTensorInfo(key, proto, "signature '" + name + "' input '" + key + "'", &info));
        sig.inputs.push_back(std::move(info));
      }
      for (const auto& [key, proto] : def.outputs()) {
        TensorInfo info;
        HUBCORE_RETURN_IF_ERROR(
            DecodeTensorInfo(key, proto, "signature '" + name + "' output '" + key + "'", &info));
        sig.outputs.push_back(std::move(info));
      }
      auto by_key = [](const TensorInfo& a, const TensorInfo& b) { return a.key < b.key; };
      std::sort(sig.inputs.begin(), sig.inputs.end(), by_key);
      std::sort(sig.outputs.begin(), sig.outputs.end(), by_key);
      variant->signatures.push_back(std::move(sig));
    }
    std::sort(variant->signatures.begin(), variant->signatures.end(),
              [](const SignatureInfo& a, const SignatureInfo& b) { return a.name < b.name; });
    return Status::OK();
  }

  Status ReadAttachments(GraphVariant* variant) {
    const auto& collections = meta_graph_->collection_def();
    auto it = collections.find(kAttachmentsCollection);
    if (it == collections.end()) return Status::OK();
    if (!it->second.has_bytes_list()) {
      return DataLoss(where_ + ": collection hub_module_attachments is not a bytes_list");
    }
    for (const auto& bytes : it->second.bytes_list().value()) {
      std::string key, value;
      Status s = ParseModuleAttachment(bytes, &key, &value);
      if (!s.ok()) return DataLoss(where_ + ": " + s.message());
      variant->attached_messages[key] = value;  // Later entries win, as in tensorflow_hub.
    }
    return Status::OK();
  }

  Status ReadVariables(GraphVariant* variant) {
    const auto& collections = meta_graph_->collection_def();
    auto it = collections.find("variables");
    if (it == collections.end()) return Status::OK();
    if (!it->second.has_bytes_list()) {
      return DataLoss(where_ + ": collection 'variables' is not a bytes_list");
    }
    std::unordered_set<std::string> trainable;
    auto trainable_it = collections.find("trainable_variables");
    if (trainable_it != collections.end()) {
      for (const auto& bytes : trainable_it->second.bytes_list().value()) {
        tensorflow::VariableDef def;
        if (def.ParseFromString(bytes)) trainable.insert(def.variable_name());
      }
    }
    std::map<std::string, VariableInfo> by_name;
    for (const auto& bytes : it->second.bytes_list().value()) {
      tensorflow::VariableDef def;
      if (!def.ParseFromString(bytes)) {
        return DataLoss(where_ + ": collection 'variables' holds a malformed VariableDef");
      }
      tensorflow::NodeDef* node = FindNode(def.variable_name());
      if (node == nullptr) {
        return DataLoss(where_ + ": variable '" + def.variable_name() + "' is not in the graph");
      }
      const auto& attrs = node->attr();
      auto dtype_it = attrs.find("dtype");
      auto shape_it = attrs.find("shape");
      const bool is_resource = node->op() == "VarHandleOp";
      if (dtype_it == attrs.end() || shape_it == attrs.end()) {
        return DataLoss(where_ + ": variable node '" + node->name() + "' (" + node->op() +
                        ") lacks dtype/shape attributes");
      }
      const bool is_trainable = trainable.count(def.variable_name()) > 0;
      if (def.has_save_slice_info_def()) {
        const auto& slice = def.save_slice_info_def();
        VariableInfo& var = by_name[slice.full_name()];
        var.name = slice.full_name();
        var.dtype = dtype_it->second.type();
        var.shape.assign(slice.full_shape().begin(), slice.full_shape().end());
        var.resource = is_resource;
        var.trainable = var.trainable || is_trainable;
        VariablePartition part;
        part.node_name = node->name();
        part.offset.assign(slice.var_offset().begin(), slice.var_offset().end());
        part.shape.assign(slice.var_shape().begin(), slice.var_shape().end());
        HUBCORE_RETURN_IF_ERROR(CheckPartition(var, part));
        var.partitions.push_back(std::move(part));
      } else {
        VariableInfo& var = by_name[node->name()];
        var.name = node->name();
        var.dtype = dtype_it->second.type();
        var.shape = DimsFromProto(shape_it->second.shape());
        var.resource = is_resource;
        var.trainable = is_trainable;
      }
    }
    for (auto& [name, var] : by_name) {
      std::sort(var.partitions.begin(), var.partitions.end(),
                [](const VariablePartition& a, const VariablePartition& b) {
                  return a.offset < b.offset;
                });
      variant->variables.push_back(std::move(var));
    }
    return Status::OK();
  }

  // A partition must be a box inside its variable's full shape, one offset and size per dimension.
  Status CheckPartition(const VariableInfo& var, const VariablePartition& part) {
    bool ok = part.offset.size() == var.shape.size() && part.shape.size() == var.shape.size();
    for (size_t d = 0; ok && d < var.shape.size(); ++d) {
      ok = var.shape[d] >= 0 && part.offset[d] >= 0 && part.shape[d] >= 0 &&
           part.offset[d] <= var.shape[d] && part.shape[d] <= var.shape[d] - part.offset[d];
    }
    if (!ok) {
      return DataLoss(where_ + ": partition '" + part.node_name + "' of variable '" + var.name +
                      "' has a save_slice_info_def whose var_offset (" +
                      std::to_string(part.offset.size()) + " dims) and var_shape (" +
                      std::to_string(part.shape.size()) + " dims) do not fit full_shape (" +
                      std::to_string(var.shape.size()) + " dims)");
    }
    return Status::OK();
  }

  Status ReadAssets(GraphVariant* variant) {
    const auto& collections = meta_graph_->collection_def();
    auto it = collections.find("asset_filepaths");
    if (it == collections.end()) return Status::OK();
    if (!it->second.has_node_list()) {
      return DataLoss(where_ + ": collection 'asset_filepaths' is not a node_list");
    }
    for (const auto& name : it->second.node_list().value()) {
      tensorflow::TensorProto* value;
      HUBCORE_RETURN_IF_ERROR(AssetConst(name, &value));
      AssetInfo asset;
      asset.tensor_name = name;
      asset.path = value->string_val(0);
      asset.filename = fs::path(asset.path).filename().string();
      variant->assets.push_back(std::move(asset));
    }
    return Status::OK();
  }

  tensorflow::MetaGraphDef* meta_graph_;
  std::string module_dir_;
  std::string where_;
  std::unordered_map<std::string, int> node_index_;
};

// The functions a function calls: nodes whose op is a library function, and function-valued
// attributes (If/While branches, PartitionedCall's f, ...).
std::vector<std::string> Callees(const tensorflow::FunctionDef& function,
                                 const std::unordered_map<std::string, int>& library) {
  std::vector<std::string> callees;
  auto add = [&](const std::string& name) {
    if (library.count(name)) callees.push_back(name);
  };
  for (const auto& node : function.node_def()) {
    add(node.op());
    for (const auto& [unused, value] : node.attr()) {
      if (value.has_func()) add(value.func().name());
      for (const auto& f : value.list().func()) add(f.name());
    }
  }
  return callees;
}

// TensorFlow's shape inference recurses into called functions, so a call cycle (or a very deep
// call chain) in the function library overflows the stack when the graph is imported. Refuse both
// here, without recursing ourselves.
Status CheckCallGraph(const tensorflow::FunctionDefLibrary& library, const std::string& where) {
  constexpr int kMaxCallDepth = 200;
  std::unordered_map<std::string, int> index;
  for (int i = 0; i < library.function_size(); ++i) {
    index.emplace(library.function(i).signature().name(), i);
  }
  std::vector<std::vector<int>> calls(library.function_size());
  for (int i = 0; i < library.function_size(); ++i) {
    for (const auto& name : Callees(library.function(i), index)) calls[i].push_back(index[name]);
  }
  enum State { kNew, kOnPath, kDone };
  std::vector<State> state(calls.size(), kNew);
  std::vector<int> depth(calls.size(), 1);
  for (size_t root = 0; root < calls.size(); ++root) {
    if (state[root] != kNew) continue;
    std::vector<std::pair<int, size_t>> path{{static_cast<int>(root), 0}};  // (function, next)
    state[root] = kOnPath;
    while (!path.empty()) {
      auto& [f, next] = path.back();
      if (next < calls[f].size()) {
        const int callee = calls[f][next++];
        if (state[callee] == kOnPath) {
          std::string cycle = library.function(callee).signature().name();
          bool in_cycle = false;
          for (const auto& [g, unused] : path) {
            in_cycle = in_cycle || g == callee;
            if (in_cycle && g != callee) cycle += " -> " + library.function(g).signature().name();
          }
          cycle += " -> " + library.function(callee).signature().name();
          return DataLoss(where + ": the function library has a call cycle: " + cycle);
        }
        if (state[callee] == kNew) {
          state[callee] = kOnPath;
          path.emplace_back(callee, 0);
        }
        continue;
      }
      for (int callee : calls[f]) depth[f] = std::max(depth[f], depth[callee] + 1);
      if (depth[f] > kMaxCallDepth) {
        return DataLoss(where + ": function '" + library.function(f).signature().name() +
                        "' nests calls more than " + std::to_string(kMaxCallDepth) + " deep");
      }
      state[f] = kDone;
      path.pop_back();
    }
  }
  return Status::OK();
}

Status BuildVariants(internal::ModuleSpecData* data, const std::string& file) {
  if (data->saved_model.meta_graphs_size() == 0) {
    return DataLoss("Cannot parse file " + file + ": it holds no graph (MetaGraphDef)");
  }
  for (int i = 0; i < data->saved_model.meta_graphs_size(); ++i) {
    GraphVariant variant;
    auto* meta_graph = data->saved_model.mutable_meta_graphs(i);
    std::set<std::string> tags(meta_graph->meta_info_def().tags().begin(),
                               meta_graph->meta_info_def().tags().end());
    variant.tags = tags;
    const std::string where = file + " (graph variant " + variant.TagsToString() + ")";
    HUBCORE_RETURN_IF_ERROR(CheckCallGraph(meta_graph->graph_def().library(), where));
    VariantBuilder builder(meta_graph, data->path, where);
    HUBCORE_RETURN_IF_ERROR(builder.Build(&variant));
    for (const auto& other : data->variants) {
      if (other.tags == variant.tags) {
        return DataLoss(file + ": tags " + variant.TagsToString() + " used repeatedly");
      }
    }
    data->variants.push_back(std::move(variant));
  }
  return Status::OK();
}

Status ReadCheckpointIndex(internal::ModuleSpecData* data) {
  const std::string prefix = (fs::path(data->path) / kVariablesPrefix).string();
  const std::string index = prefix + ".index";
  bool has_variables = false;
  for (const auto& v : data->variants) has_variables = has_variables || !v.variables.empty();
  std::error_code ec;
  if (!fs::exists(index, ec)) {
    if (has_variables) {
      return DataLoss("Module " + data->path + " has variables but its checkpoint index " + index +
                      " is missing");
    }
    return Status::OK();
  }
  HUBCORE_RETURN_IF_ERROR(ReadCheckpointEntries(prefix, &data->checkpoint_entries));
  data->checkpoint_prefix = prefix;
  return Status::OK();
}

}  // namespace
}  // namespace internal

namespace {

// The one dtype table of the C++ side: TF_DataType <-> name.
struct DataTypeEntry {
  TF_DataType type;
  const char* name;
};
constexpr DataTypeEntry kDataTypes[] = {
    {TF_FLOAT, "float32"},
    {TF_DOUBLE, "float64"},
    {TF_HALF, "float16"},
    {TF_BFLOAT16, "bfloat16"},
    {TF_INT8, "int8"},
    {TF_INT16, "int16"},
    {TF_INT32, "int32"},
    {TF_INT64, "int64"},
    {TF_UINT8, "uint8"},
    {TF_UINT16, "uint16"},
    {TF_UINT32, "uint32"},
    {TF_UINT64, "uint64"},
    {TF_BOOL, "bool"},
    {TF_STRING, "string"},
    {TF_COMPLEX64, "complex64"},
    {TF_COMPLEX128, "complex128"},
    {TF_RESOURCE, "resource"},
    {TF_VARIANT, "variant"},
    // The types numpy lacks, named as ml_dtypes names them.
    {TF_FLOAT8_E5M2, "float8_e5m2"},
    {TF_FLOAT8_E4M3FN, "float8_e4m3fn"},
    {TF_FLOAT8_E4M3FNUZ, "float8_e4m3fnuz"},
    {TF_FLOAT8_E4M3B11FNUZ, "float8_e4m3b11fnuz"},
    {TF_FLOAT8_E5M2FNUZ, "float8_e5m2fnuz"},
    {TF_INT4, "int4"},
    {TF_UINT4, "uint4"},
    {TF_INT2, "int2"},
    {TF_UINT2, "uint2"},
    {TF_FLOAT4_E2M1FN, "float4_e2m1fn"},
};

}  // namespace

std::string DataTypeName(int dtype) {
  for (const auto& entry : kDataTypes) {
    if (entry.type == dtype) return entry.name;
  }
  return "dtype" + std::to_string(dtype);
}

int DataTypeFromName(const std::string& name) {
  for (const auto& entry : kDataTypes) {
    if (name == entry.name) return entry.type;
  }
  return -1;
}

std::string TensorShape::ToString() const {
  if (unknown_rank) return "<unknown>";
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += dims[i] < 0 ? "None" : std::to_string(dims[i]);
  }
  if (dims.size() == 1) s += ",";
  return s + ")";
}

const TensorInfo* SignatureInfo::FindInput(const std::string& key) const {
  for (const auto& t : inputs)
    if (t.key == key) return &t;
  return nullptr;
}

const TensorInfo* SignatureInfo::FindOutput(const std::string& key) const {
  for (const auto& t : outputs)
    if (t.key == key) return &t;
  return nullptr;
}

int64_t VariableInfo::num_bytes() const {
  const int64_t size = static_cast<int64_t>(TF_DataTypeSize(static_cast<TF_DataType>(dtype)));
  if (size <= 0) return 0;
  int64_t n = size;
  for (int64_t d : shape) {
    if (d < 0) return 0;
    n *= d;
  }
  return n;
}

const SignatureInfo* GraphVariant::FindSignature(const std::string& name) const {
  for (const auto& s : signatures)
    if (s.name == name) return &s;
  return nullptr;
}

std::string GraphVariant::TagsToString() const {
  std::string s = "{";
  for (const auto& t : tags) s += (s.size() > 1 ? ", " : "") + t;
  return s + "}";
}

ModuleSpec::ModuleSpec() : data_(std::make_unique<internal::ModuleSpecData>()) {}
ModuleSpec::~ModuleSpec() = default;

Status ModuleSpec::Load(const std::string& path, std::unique_ptr<ModuleSpec>* spec) {
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) {
    return NotFound("Module path '" + path + "' does not exist");
  }
  if (!fs::is_directory(path, ec)) {
    const bool is_file = fs::is_regular_file(path, ec);
    return NotAModule("'" + path + "' is " + (is_file ? "a file" : "a FIFO, socket or device") +
                      ", not a module directory");
  }
  const fs::path dir = fs::absolute(path, ec).lexically_normal();
  const fs::path module_def_file = dir / internal::kModuleDefFile;
  const fs::path saved_model_file = dir / internal::kSavedModelFile;
  if (!fs::exists(module_def_file, ec)) {
    if (fs::exists(saved_model_file, ec)) {
      return NotAModule("'" + path +
                        "' is a SavedModel but not a TF1 Hub module: " + internal::kModuleDefFile +
                        " is missing. Load TF2 SavedModels with tf.saved_model.load(); convert "
                        "TF1 SavedModels with hubcore.create_module_spec_from_saved_model().");
    }
    return NotAModule("'" + path + "' is not a TF1 Hub module: " + internal::kModuleDefFile +
                      " and " + internal::kSavedModelFile + " are missing");
  }
  std::string bytes;
  HUBCORE_RETURN_IF_ERROR(
      internal::ReadRegularFile(module_def_file.string(), internal::MaxProtoBytes(), &bytes));
  internal::ModuleDef module_def;
  HUBCORE_RETURN_IF_ERROR(internal::ParseModuleDef(bytes, module_def_file.string(), &module_def));
  HUBCORE_RETURN_IF_ERROR(internal::ValidateModuleDef(module_def, module_def_file.string()));
  if (!fs::exists(saved_model_file, ec)) {
    return NotAModule("'" + path + "' is not a complete TF1 Hub module: " +
                      internal::kSavedModelFile + " is missing");
  }
  HUBCORE_RETURN_IF_ERROR(
      internal::ReadRegularFile(saved_model_file.string(), internal::MaxProtoBytes(), &bytes));
  std::unique_ptr<ModuleSpec> result(new ModuleSpec());
  result->data_->path = dir.string();
  result->data_->format_version = module_def.format;
  if (!result->data_->saved_model.ParseFromString(bytes)) {
    return DataLoss("Cannot parse file " + saved_model_file.string() +
                    ": not a valid SavedModel (truncated or corrupt)");
  }
  HUBCORE_RETURN_IF_ERROR(internal::BuildVariants(result->data_.get(), saved_model_file.string()));
  HUBCORE_RETURN_IF_ERROR(internal::ReadCheckpointIndex(result->data_.get()));
  *spec = std::move(result);
  return Status::OK();
}

Status ModuleSpec::FromSavedModelBytes(const std::string& saved_model_bytes,
                                       const std::string& module_dir, bool has_checkpoint,
                                       std::unique_ptr<ModuleSpec>* spec) {
  std::unique_ptr<ModuleSpec> result(new ModuleSpec());
  result->data_->path = module_dir;
  result->data_->format_version = internal::kModuleDefFormatV3;
  if (!result->data_->saved_model.ParseFromString(saved_model_bytes)) {
    return DataLoss("Cannot parse the SavedModel bytes given to FromSavedModelBytes");
  }
  HUBCORE_RETURN_IF_ERROR(internal::BuildVariants(result->data_.get(), "<in-memory SavedModel>"));
  if (has_checkpoint) HUBCORE_RETURN_IF_ERROR(internal::ReadCheckpointIndex(result->data_.get()));
  *spec = std::move(result);
  return Status::OK();
}

const std::string& ModuleSpec::path() const { return data_->path; }
int ModuleSpec::format_version() const { return data_->format_version; }
const std::vector<GraphVariant>& ModuleSpec::variants() const { return data_->variants; }
const GraphVariant* ModuleSpec::FindVariant(const std::set<std::string>& tags) const {
  const int i = internal::FindMetaGraphIndex(*data_, tags);
  return i < 0 ? nullptr : &data_->variants[i];
}
const std::string& ModuleSpec::checkpoint_prefix() const { return data_->checkpoint_prefix; }
const std::vector<CheckpointEntry>& ModuleSpec::checkpoint_entries() const {
  return data_->checkpoint_entries;
}
std::string ModuleSpec::SerializedSavedModel() const {
  return data_->saved_model.SerializeAsString();
}

}  // namespace hubcore
