// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
#include "restore_ops.h"

#include "tensorflow/core/framework/attr_value.pb.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/framework/tensor_shape.pb.h"
#include "tensorflow/core/framework/types.pb.h"

namespace hubcore::internal {
namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string text;
  for (int64_t d : shape) text += std::to_string(d) + ",";
  return "[" + text + "]";
}

bool ShapeMatches(const RestoreTarget& target, const std::vector<int64_t>& actual) {
  if (target.shape.empty() && !target.sliced) return true;  // Unknown rank (or a scalar).
  if (target.shape.size() != actual.size()) return false;
  for (size_t d = 0; d < actual.size(); ++d) {
    if (target.shape[d] >= 0 && target.shape[d] != actual[d]) return false;
  }
  return true;
}

tensorflow::NodeDef* AddStringConst(tensorflow::GraphDef* graph, const std::string& name,
                                    const std::vector<std::string>& values, bool vector) {
  tensorflow::NodeDef* node = graph->add_node();
  node->set_name(name);
  node->set_op("Const");
  (*node->mutable_attr())["dtype"].set_type(tensorflow::DT_STRING);
  tensorflow::TensorProto* tensor = (*node->mutable_attr())["value"].mutable_tensor();
  tensor->set_dtype(tensorflow::DT_STRING);
  if (vector) {
    tensor->mutable_tensor_shape()->add_dim()->set_size(static_cast<int64_t>(values.size()));
  }
  for (const auto& value : values) tensor->add_string_val(value);
  return node;
}

}  // namespace

std::string SliceSpec(const std::vector<int64_t>& full_shape, const std::vector<int64_t>& offset,
                      const std::vector<int64_t>& size) {
  std::string spec;
  for (int64_t d : full_shape) spec += std::to_string(d) + " ";
  for (size_t i = 0; i < offset.size() && i < size.size(); ++i) {
    if (i) spec += ":";
    spec += std::to_string(offset[i]) + "," + std::to_string(size[i]);
  }
  return spec;
}

CheckpointIndex IndexCheckpoint(const std::vector<CheckpointEntry>& entries) {
  CheckpointIndex index;
  index.reserve(entries.size());
  for (const auto& entry : entries) index.emplace(entry.key, entry);
  return index;
}

Status CheckRestoreTargets(const std::vector<RestoreTarget>& targets,
                           const CheckpointIndex& checkpoint, const std::string& checkpoint_prefix,
                           const std::string& where) {
  for (const RestoreTarget& target : targets) {
    auto it = checkpoint.find(target.checkpoint_key);
    if (it == checkpoint.end()) {
      return DataLoss("Tensor " + target.checkpoint_key + " is not found in " + checkpoint_prefix +
                      " checkpoint (needed by variable '" + target.variable + "' of " + where +
                      ")");
    }
    const CheckpointEntry& entry = it->second;
    if (entry.dtype != target.dtype) {
      return DataLoss("Variable '" + target.variable + "' of " + where + " is " +
                      DataTypeName(target.dtype) + " but the checkpoint entry '" +
                      target.checkpoint_key + "' in " + checkpoint_prefix + " holds " +
                      DataTypeName(entry.dtype));
    }
    if (!ShapeMatches(target, entry.shape)) {
      return DataLoss("Shape of variable '" + target.variable + "' (" + ShapeText(target.shape) +
                      ") does not match the checkpoint entry '" + target.checkpoint_key + "' (" +
                      ShapeText(entry.shape) + ") in " + checkpoint_prefix);
    }
  }
  return Status::OK();
}

std::vector<tensorflow::NodeDef*> AddRestoreOps(const std::string& restore_name,
                                                const std::string& checkpoint_prefix,
                                                const std::vector<RestoreTarget>& targets,
                                                tensorflow::GraphDef* graph) {
  std::vector<std::string> keys, slices;
  for (const RestoreTarget& target : targets) {
    keys.push_back(target.checkpoint_key);
    slices.push_back(target.slice);
  }
  const std::string prefix_node = restore_name + "/prefix";
  const std::string names_node = restore_name + "/tensor_names";
  const std::string slices_node = restore_name + "/shape_and_slices";
  AddStringConst(graph, prefix_node, {checkpoint_prefix}, false);
  tensorflow::NodeDef* restore = graph->add_node();
  restore->set_name(restore_name);
  restore->set_op("RestoreV2");
  restore->set_device("/device:CPU:0");
  restore->add_input(prefix_node);
  restore->add_input(names_node);
  restore->add_input(slices_node);
  auto* dtypes = (*restore->mutable_attr())["dtypes"].mutable_list();

  std::vector<tensorflow::NodeDef*> assigns;
  assigns.reserve(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    const RestoreTarget& target = targets[i];
    const auto dtype = static_cast<tensorflow::DataType>(target.dtype);
    dtypes->add_type(dtype);
    tensorflow::NodeDef* assign = graph->add_node();
    assign->set_name(target.assign_name);
    assign->add_input(target.variable);
    assign->add_input(restore_name + ":" + std::to_string(i));
    if (target.resource) {
      assign->set_op("AssignVariableOp");
      (*assign->mutable_attr())["dtype"].set_type(dtype);
    } else {
      assign->set_op("Assign");
      (*assign->mutable_attr())["T"].set_type(dtype);
      (*assign->mutable_attr())["validate_shape"].set_b(true);
      (*assign->mutable_attr())["use_locking"].set_b(true);
    }
    assigns.push_back(assign);
  }
  AddStringConst(graph, names_node, keys, true);
  AddStringConst(graph, slices_node, slices, true);
  return assigns;
}

}  // namespace hubcore::internal
