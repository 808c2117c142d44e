// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Checkpoint restore as graph ops, shared by the graph rewriter (a hub.Module instance's
// variable initializers) and the runtime (a LoadedModule's restore step): one RestoreV2 reading
// every variable of the variant, and one assign per variable or partition.
#ifndef HUBCORE_SRC_RESTORE_OPS_H_
#define HUBCORE_SRC_RESTORE_OPS_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "hubcore/module_spec.h"
#include "hubcore/status.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"

namespace hubcore::internal {

// One variable, or one partition of a partitioned variable, to fill from a checkpoint.
struct RestoreTarget {
  std::string variable;        // The VarHandleOp / VariableV2 node that receives the value.
  bool resource = true;        // AssignVariableOp (resource) or Assign (ref variable).
  int dtype = 0;               // TF_DataType of the value.
  std::string checkpoint_key;  // The checkpoint entry (a partitioned variable's full name).
  // The entry's expected shape (the full shape for a partition); -1 matches any size. Empty
  // with `sliced` false also stands for an unknown rank, which matches any shape.
  std::vector<int64_t> shape;
  bool sliced = false;
  std::string slice;        // RestoreV2 shape_and_slice ("" for a whole tensor).
  std::string assign_name;  // Name of the assign node to add.
};

// The RestoreV2 shape_and_slice of one partition: "<full shape> <offset>,<size>:...".
std::string SliceSpec(const std::vector<int64_t>& full_shape, const std::vector<int64_t>& offset,
                      const std::vector<int64_t>& size);

// Checkpoint entries by key.
using CheckpointIndex = std::unordered_map<std::string, CheckpointEntry>;
CheckpointIndex IndexCheckpoint(const std::vector<CheckpointEntry>& entries);

// Checks that every target's entry exists in the checkpoint with the target's dtype and shape;
// kDataLoss naming the variable, the entry, the checkpoint and `where` otherwise.
[[nodiscard]] Status CheckRestoreTargets(const std::vector<RestoreTarget>& targets,
                                         const CheckpointIndex& checkpoint,
                                         const std::string& checkpoint_prefix,
                                         const std::string& where);

// Appends string Consts `<restore_name>/prefix`, `/tensor_names` and `/shape_and_slices`, the
// RestoreV2 node `restore_name` (on the CPU; output i is target i) and one assign per target.
// Returns the assign nodes, in target order, for the caller to annotate.
std::vector<tensorflow::NodeDef*> AddRestoreOps(const std::string& restore_name,
                                                const std::string& checkpoint_prefix,
                                                const std::vector<RestoreTarget>& targets,
                                                tensorflow::GraphDef* graph);

}  // namespace hubcore::internal

#endif  // HUBCORE_SRC_RESTORE_OPS_H_
