// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// What a loaded ModuleSpec keeps besides its public summary: the parsed SavedModel, shared by the
// graph rewriter and the runtime so neither parses the file again.
#ifndef HUBCORE_SRC_MODULE_SPEC_DATA_H_
#define HUBCORE_SRC_MODULE_SPEC_DATA_H_

#include <string>
#include <vector>

#include "hubcore/module_spec.h"
#include "tensorflow/core/framework/function.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/protobuf/saved_model.pb.h"

namespace hubcore::internal {

struct ModuleSpecData {
  std::string path;
  int format_version = 0;
  // Asset Const nodes hold absolute paths into <path>/assets; the on-disk-only
  // `saved_model_assets` collection is removed (as every TF1 Hub reader does in memory).
  tensorflow::SavedModel saved_model;
  std::vector<GraphVariant> variants;  // variants[i] describes saved_model.meta_graphs(i).
  std::string checkpoint_prefix;
  std::vector<CheckpointEntry> checkpoint_entries;
};

// Index of the MetaGraphDef for `tags` in data.saved_model, or -1.
int FindMetaGraphIndex(const ModuleSpecData& data, const std::set<std::string>& tags);

// FindMetaGraphIndex for callers that need the variant: kVariantNotFound naming the module and
// the tag sets it has when there is none.
Status FindVariant(const ModuleSpecData& data, const std::set<std::string>& tags, int* index);

// Reads the variables index of the checkpoint at `prefix` (sliced partitions appear once, under
// their full name). kDataLoss naming the file when it is missing or unreadable.
Status ReadCheckpointEntries(const std::string& prefix, std::vector<CheckpointEntry>* entries);

// kFailedPrecondition when a node of `nodes`, or of a function in `library`, has an op type that
// TensorFlow does not register (a call of a `library` function is not an op): "<where> uses op
// type 'T' (node 'N'), which is not registered in this TensorFlow. If it is a custom op, load its
// library first (<how_to_load>)." N is "<node_scope>/<name>" for a node of `nodes` (as it will be
// named once imported) and "<function>/<name>" inside a function. Checked before TensorFlow
// imports a graph, whose own error names neither the module nor a node. Implemented with the op
// policy (op_policy.cc).
Status CheckOpsRegistered(const std::vector<const tensorflow::NodeDef*>& nodes,
                          const tensorflow::FunctionDefLibrary& library, const std::string& where,
                          const std::string& how_to_load, const std::string& node_scope = "");

// Splits "node:3" into ("node", 3); "node" gives index 0; "^node" gives index -1 (control).
void ParseTensorName(const std::string& name, std::string* node, int* index);

}  // namespace hubcore::internal

#endif  // HUBCORE_SRC_MODULE_SPEC_DATA_H_
