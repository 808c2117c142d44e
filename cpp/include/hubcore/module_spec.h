// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// hubcore::ModuleSpec: a parsed TF1 Hub module directory, with no TensorFlow session or Python.
//
// A module directory holds `tfhub_module.pb` (format marker), `saved_model.pb` (one MetaGraphDef
// per graph variant), `variables/variables.{index,data-*}` (checkpoint) and `assets/`. Loading
// parses and validates all of it once; the accessors below are cheap and never touch the disk
// again.
//
//   std::unique_ptr<hubcore::ModuleSpec> spec;
//   hubcore::Status s = hubcore::ModuleSpec::Load("/models/text", &spec);
//   if (!s.ok()) { std::cerr << s.ToString(); return 1; }
//   const hubcore::GraphVariant* v = spec->FindVariant({});   // the default (empty) tag set
//   for (const auto& sig : v->signatures) std::cout << sig.name << "\n";
#ifndef HUBCORE_MODULE_SPEC_H_
#define HUBCORE_MODULE_SPEC_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "hubcore/export.h"
#include "hubcore/status.h"

namespace hubcore {

// The Python-style name of a TF_DataType value ("float32", "string", ...), or "dtype<N>". For
// numbers and bool it is also numpy's name of the same type.
HUBCORE_API std::string DataTypeName(int dtype);

// The TF_DataType that DataTypeName spells `name`, or -1.
HUBCORE_API int DataTypeFromName(const std::string& name);

// A static shape: `unknown_rank`, or one entry per dimension with -1 for an unknown size.
struct HUBCORE_API TensorShape {
  bool unknown_rank = true;
  std::vector<int64_t> dims;
  std::string ToString() const;  // "(None, 3)", "<unknown>"
};

// How a signature value is encoded in its TensorInfo.
enum class TensorKind { kDense, kSparse, kRagged, kComposite };

// One input or output of a signature.
struct TensorInfo {
  std::string key;  // The name in the signature ("default", "x", ...).
  TensorKind kind = TensorKind::kDense;
  int dtype = 0;  // A TF_DataType value (for sparse and ragged: the values' dtype).
  TensorShape shape;
  // Module-relative tensor names ("node:0"). Dense: {tensor}. Sparse: {values, indices,
  // dense_shape}. Ragged / composite: the flat components (flat_values, row_splits_0, ...).
  std::vector<std::string> tensor_names;
  int ragged_rank = 0;               // Ragged only.
  int row_splits_dtype = 0;          // Ragged only (TF_DataType).
  std::string type_spec_proto;       // Composite only: the serialized TypeSpecProto.
  std::string type_spec_class_name;  // Composite only ("RaggedTensorSpec", ...).
};

struct HUBCORE_API SignatureInfo {
  std::string name;
  std::vector<TensorInfo> inputs;   // Sorted by key.
  std::vector<TensorInfo> outputs;  // Sorted by key.
  const TensorInfo* FindInput(const std::string& key) const;
  const TensorInfo* FindOutput(const std::string& key) const;
};

// One slice of a partitioned variable (axis-0 partitioning, as tf.compat.v1 writes it).
struct VariablePartition {
  std::string node_name;  // "table/part_0"
  std::vector<int64_t> offset;
  std::vector<int64_t> shape;
};

// A module variable as the checkpoint and `variable_map` name it (partitions grouped).
struct HUBCORE_API VariableInfo {
  std::string name;            // Module-relative: "w", "dense/kernel", "table" for "table/part_*".
  int dtype = 0;               // TF_DataType of the value (not the resource handle).
  std::vector<int64_t> shape;  // Full shape (for a partitioned variable, the whole tensor).
  bool trainable = false;
  bool resource = true;                       // VarHandleOp (true) or ref VariableV2 (false).
  std::vector<VariablePartition> partitions;  // Empty unless partitioned.
  int64_t num_bytes() const;                  // Size of the value; 0 for strings/unknown.
};

struct AssetInfo {
  std::string tensor_name;  // The string Const in the graph ("asset_path:0").
  std::string filename;     // Basename under assets/.
  std::string path;         // <module>/assets/<filename>.
};

// One graph variant (a MetaGraphDef), identified by its set of tags.
struct HUBCORE_API GraphVariant {
  std::set<std::string> tags;
  std::vector<SignatureInfo> signatures;                 // Sorted by name.
  std::map<std::string, std::string> attached_messages;  // key -> serialized message.
  std::vector<VariableInfo> variables;                   // Sorted by name.
  std::vector<AssetInfo> assets;
  std::vector<std::string> collection_keys;
  int num_nodes = 0;
  const SignatureInfo* FindSignature(const std::string& name) const;
  std::string TagsToString() const;  // "{}" or "{train, x}"
};

// A checkpoint entry as the variables index records it.
struct CheckpointEntry {
  std::string key;
  int dtype = 0;
  std::vector<int64_t> shape;
  bool sliced = false;
};

namespace internal {
struct ModuleSpecData;  // Parsed protos; see cpp/src/module_spec_data.h.
}

class HUBCORE_API ModuleSpec {
 public:
  // Reads and validates the module directory at `path`. On failure `*spec` is untouched and the
  // status names the file and the problem: kNotFound (no such path), kNotAModule (no
  // tfhub_module.pb, e.g. a TF2 SavedModel), kUnimplemented (format version / required feature),
  // kDataLoss (a corrupt or truncated file), kInvalidArgument (a structurally invalid module).
  static Status Load(const std::string& path, std::unique_ptr<ModuleSpec>* spec);

  // Parses an in-memory module (used for specs created in Python that have no directory yet).
  // `module_dir` is where assets and the checkpoint live, possibly empty.
  static Status FromSavedModelBytes(const std::string& saved_model_bytes,
                                    const std::string& module_dir, bool has_checkpoint,
                                    std::unique_ptr<ModuleSpec>* spec);

  ~ModuleSpec();
  ModuleSpec(const ModuleSpec&) = delete;
  ModuleSpec& operator=(const ModuleSpec&) = delete;

  const std::string& path() const;  // The directory given to Load (absolute).
  int format_version() const;       // 3 for every known module.
  const std::vector<GraphVariant>& variants() const;
  // The variant whose tag set equals `tags`, or nullptr.
  const GraphVariant* FindVariant(const std::set<std::string>& tags) const;
  // The checkpoint prefix (<path>/variables/variables), or "" when the module has no checkpoint.
  const std::string& checkpoint_prefix() const;
  const std::vector<CheckpointEntry>& checkpoint_entries() const;
  // The SavedModel as stored, with asset paths resolved to this module's files (serialized).
  std::string SerializedSavedModel() const;

  // For the other parts of the core (graph rewrite, runtime).
  const internal::ModuleSpecData& data() const { return *data_; }

 private:
  ModuleSpec();
  std::unique_ptr<internal::ModuleSpecData> data_;
};

}  // namespace hubcore

#endif  // HUBCORE_MODULE_SPEC_H_
