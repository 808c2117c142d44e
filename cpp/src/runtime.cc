// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// The serving runtime: one graph variant imported once into a TF_Graph + TF_Session through the
// TensorFlow C API, variables restored by RestoreV2 nodes added to the GraphDef before import,
// tables initialized, and each signature's feeds and fetches resolved to TF_Output handles.
#include "hubcore/runtime.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "hubcore/op_policy.h"
#include "module_spec_data.h"
#include "restore_ops.h"
#include "tensorflow/c/c_api.h"
#include "tensorflow/c/tf_tstring.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/protobuf/config.pb.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"

namespace hubcore {

// ---- Value ----------------------------------------------------------------------------------

Value Value::Dense(TensorPtr tensor) {
  Value v;
  v.kind_ = TensorKind::kDense;
  v.components_.push_back(std::move(tensor));
  return v;
}

Value Value::Sparse(TensorPtr indices, TensorPtr values, TensorPtr dense_shape) {
  Value v;
  v.kind_ = TensorKind::kSparse;
  v.components_.push_back(std::move(values));
  v.components_.push_back(std::move(indices));
  v.components_.push_back(std::move(dense_shape));
  return v;
}

Value Value::Ragged(TensorPtr flat_values, std::vector<TensorPtr> row_splits) {
  Value v;
  v.kind_ = TensorKind::kRagged;
  v.components_.push_back(std::move(flat_values));
  for (auto& s : row_splits) v.components_.push_back(std::move(s));
  return v;
}

Value Value::FromComponents(TensorKind kind, std::vector<TensorPtr> components) {
  Value v;
  v.kind_ = kind;
  v.components_ = std::move(components);
  return v;
}

TF_Tensor* Value::sparse_indices() const {
  return kind_ == TensorKind::kSparse && components_.size() == 3 ? components_[1].get() : nullptr;
}

TF_Tensor* Value::sparse_dense_shape() const {
  return kind_ == TensorKind::kSparse && components_.size() == 3 ? components_[2].get() : nullptr;
}

TF_Tensor* Value::row_splits(int i) const {
  if (kind_ != TensorKind::kRagged || i < 0 || i + 1 >= static_cast<int>(components_.size())) {
    return nullptr;
  }
  return components_[i + 1].get();
}

// ---- LoadedModule::Impl ---------------------------------------------------------------------

namespace {

constexpr char kRestorePrefix[] = "hubcore_runtime_restore";

struct StatusDeleter {
  void operator()(TF_Status* s) const { TF_DeleteStatus(s); }
};
using StatusPtr = std::unique_ptr<TF_Status, StatusDeleter>;
struct BufferDeleter {
  void operator()(TF_Buffer* b) const { TF_DeleteBuffer(b); }
};
using BufferPtr = std::unique_ptr<TF_Buffer, BufferDeleter>;

StatusPtr NewStatus() { return StatusPtr(TF_NewStatus()); }

std::string KindName(TensorKind kind) {
  switch (kind) {
    case TensorKind::kDense:
      return "dense";
    case TensorKind::kSparse:
      return "sparse";
    case TensorKind::kRagged:
      return "ragged";
    case TensorKind::kComposite:
      return "composite";
  }
  return "?";
}

std::string ShapeOf(const TF_Tensor* t) {
  std::string s = "[";
  for (int i = 0; i < TF_NumDims(t); ++i) {
    if (i) s += ", ";
    s += std::to_string(TF_Dim(t, i));
  }
  return s + "]";
}

// Maps a TensorFlow error from running the session to a hubcore Status.
Status FromTfStatus(const TF_Status* s, const std::string& context) {
  const TF_Code code = TF_GetCode(s);
  std::string message = context + ": " + TF_Message(s);
  if (code == TF_INVALID_ARGUMENT || code == TF_OUT_OF_RANGE) {
    return InvalidArgument(std::move(message));
  }
  return Internal(std::move(message));
}

std::string JoinQuoted(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

// What one component of a signature value must look like.
struct ComponentSpec {
  TF_Output output{nullptr, 0};
  int dtype = 0;
  int rank = -1;              // -1: any rank.
  std::vector<int64_t> dims;  // When rank >= 0: -1 for an unknown size.
  std::string what;           // "values", "indices", "row_splits_0", ...
};

struct PreparedInput {
  const TensorInfo* info = nullptr;
  std::vector<ComponentSpec> components;
};

struct PreparedOutput {
  const TensorInfo* info = nullptr;
  std::vector<int> fetch_index;  // Into PreparedSignature::fetches, one per component.
};

struct PreparedSignature {
  const SignatureInfo* info = nullptr;
  std::vector<PreparedInput> inputs;    // In info->inputs order.
  std::vector<PreparedOutput> outputs;  // In info->outputs order.
  std::vector<TF_Output> fetches;       // Distinct tensors of all outputs.
  // Per fetch: the position in the feed list of the input component that is the same tensor
  // (TensorFlow refuses to fetch a fed tensor; its value is the fed one), or -1.
  std::vector<int> fed_by;
};

// The static components of `info` in TensorInfo::tensor_names order.
std::vector<ComponentSpec> ComponentSpecs(const TensorInfo& info) {
  // ModuleSpec validation guarantees the component count for each kind; never index past it.
  const size_t needed = info.kind == TensorKind::kDense    ? 1
                        : info.kind == TensorKind::kSparse ? 3
                        : info.kind == TensorKind::kRagged ? 1
                                                           : 0;
  std::vector<ComponentSpec> specs(std::max(info.tensor_names.size(), needed));
  const int rank = info.shape.unknown_rank ? -1 : static_cast<int>(info.shape.dims.size());
  switch (info.kind) {
    case TensorKind::kDense:
      specs[0] = {{}, info.dtype, rank, info.shape.dims, "tensor"};
      break;
    case TensorKind::kSparse:
      specs[0] = {{}, info.dtype, 1, {-1}, "values"};
      specs[1] = {{}, TF_INT64, 2, {-1, rank}, "indices"};
      specs[2] = {{}, TF_INT64, 1, {rank}, "dense_shape"};
      break;
    case TensorKind::kRagged: {
      specs[0] = {{}, info.dtype, -1, {}, "flat_values"};
      if (rank >= 0) {
        specs[0].rank = rank - info.ragged_rank;
        specs[0].dims.assign(1, -1);
        for (int d = std::max(info.ragged_rank, 0) + 1; d < rank; ++d)
          specs[0].dims.push_back(info.shape.dims[d]);
      }
      for (size_t i = 1; i < specs.size(); ++i) {
        specs[i] = {{}, info.row_splits_dtype, 1, {-1}, "row_splits_" + std::to_string(i - 1)};
      }
      break;
    }
    case TensorKind::kComposite:
      for (size_t i = 0; i < specs.size(); ++i) {
        specs[i] = {{}, 0, -1, {}, "component_" + std::to_string(i)};
      }
      break;
  }
  for (auto& s : specs) {
    if (s.rank >= 0 && static_cast<int>(s.dims.size()) != s.rank) s.dims.assign(s.rank, -1);
  }
  return specs;
}

}  // namespace

struct LoadedModule::Impl {
  std::string path;
  std::set<std::string> tags;
  std::vector<SignatureInfo> signatures;
  TF_Graph* graph = nullptr;
  TF_Session* session = nullptr;
  std::map<std::string, PreparedSignature> prepared;

  ~Impl() {
    if (session != nullptr) {
      StatusPtr s = NewStatus();
      TF_CloseSession(session, s.get());
      TF_DeleteSession(session, s.get());
    }
    if (graph != nullptr) TF_DeleteGraph(graph);
  }

  Status ResolveTensor(const std::string& name, TF_Output* out) const {
    std::string node;
    int index = 0;
    internal::ParseTensorName(name, &node, &index);
    TF_Operation* op = TF_GraphOperationByName(graph, node.c_str());
    if (op == nullptr || index < 0 || index >= TF_OperationNumOutputs(op)) {
      return DataLoss("Module " + path + ": signature tensor '" + name + "' is not in the graph");
    }
    *out = TF_Output{op, index};
    return Status::OK();
  }

  Status Prepare() {
    for (const SignatureInfo& sig : signatures) {
      PreparedSignature p;
      p.info = &sig;
      for (const TensorInfo& in : sig.inputs) {
        PreparedInput pi;
        pi.info = &in;
        pi.components = ComponentSpecs(in);
        if (pi.components.size() != in.tensor_names.size()) {
          return DataLoss("Module " + path + ": input '" + in.key + "' has " +
                          std::to_string(in.tensor_names.size()) + " component tensors");
        }
        for (size_t i = 0; i < in.tensor_names.size(); ++i) {
          ComponentSpec& c = pi.components[i];
          HUBCORE_RETURN_IF_ERROR(ResolveTensor(in.tensor_names[i], &c.output));
          const int graph_dtype = TF_OperationOutputType(c.output);
          if (c.dtype == 0) {
            c.dtype = graph_dtype;
          } else if (c.dtype != graph_dtype) {
            // Values of the signature's dtype would be fed to a tensor of another type.
            return DataLoss("Module " + path + ": signature '" + sig.name + "' input '" + in.key +
                            "' (" + c.what + ") is " + DataTypeName(c.dtype) + " but its tensor '" +
                            in.tensor_names[i] + "' is " + DataTypeName(graph_dtype));
          }
        }
        p.inputs.push_back(std::move(pi));
      }
      for (const TensorInfo& out : sig.outputs) {
        PreparedOutput po;
        po.info = &out;
        for (const std::string& name : out.tensor_names) {
          TF_Output t;
          HUBCORE_RETURN_IF_ERROR(ResolveTensor(name, &t));
          int index = -1;
          for (size_t f = 0; f < p.fetches.size(); ++f) {
            if (p.fetches[f].oper == t.oper && p.fetches[f].index == t.index) index = f;
          }
          if (index < 0) {
            index = static_cast<int>(p.fetches.size());
            p.fetches.push_back(t);
          }
          po.fetch_index.push_back(index);
        }
        p.outputs.push_back(std::move(po));
      }
      p.fed_by.assign(p.fetches.size(), -1);
      int position = 0;
      for (const PreparedInput& pi : p.inputs) {
        for (const ComponentSpec& c : pi.components) {
          for (size_t f = 0; f < p.fetches.size(); ++f) {
            if (p.fetches[f].oper == c.output.oper && p.fetches[f].index == c.output.index) {
              p.fed_by[f] = position;
            }
          }
          ++position;
        }
      }
      prepared.emplace(sig.name, std::move(p));
    }
    return Status::OK();
  }
};

namespace {

// Adds the restore ops (restore_ops.h) for every variable of the variant and a NoOp running
// all their assigns; returns the NoOp's name in `*restore_op` ("" when there is nothing to
// restore).
Status AddRestoreNodes(const internal::ModuleSpecData& data, const GraphVariant& variant,
                       tensorflow::GraphDef* graph_def, std::string* restore_op) {
  restore_op->clear();
  if (variant.variables.empty()) return Status::OK();
  if (data.checkpoint_prefix.empty()) {
    return DataLoss("Module " + data.path + " has variables but no checkpoint");
  }
  std::unordered_set<std::string> node_names;
  for (const auto& n : graph_def->node()) node_names.insert(n.name());
  std::string prefix = kRestorePrefix;
  for (int k = 1; node_names.count(prefix + "/restore_all"); ++k) {
    prefix = std::string(kRestorePrefix) + "_" + std::to_string(k);
  }

  std::vector<internal::RestoreTarget> targets;
  for (const VariableInfo& var : variant.variables) {
    internal::RestoreTarget target;
    target.resource = var.resource;
    target.dtype = var.dtype;
    target.checkpoint_key = var.name;
    target.shape = var.shape;
    target.sliced = !var.partitions.empty();
    if (var.partitions.empty()) {
      target.variable = var.name;
      target.assign_name = prefix + "/assign_" + std::to_string(targets.size());
      targets.push_back(std::move(target));
      continue;
    }
    for (const VariablePartition& part : var.partitions) {
      internal::RestoreTarget slice = target;
      slice.variable = part.node_name;
      slice.slice = internal::SliceSpec(var.shape, part.offset, part.shape);
      slice.assign_name = prefix + "/assign_" + std::to_string(targets.size());
      targets.push_back(std::move(slice));
    }
  }
  HUBCORE_RETURN_IF_ERROR(
      internal::CheckRestoreTargets(targets, internal::IndexCheckpoint(data.checkpoint_entries),
                                    data.checkpoint_prefix, "module " + data.path));
  internal::AddRestoreOps(prefix + "/RestoreV2", data.checkpoint_prefix, targets, graph_def);
  tensorflow::NodeDef* all = graph_def->add_node();
  all->set_name(prefix + "/restore_all");
  all->set_op("NoOp");
  for (const auto& target : targets) all->add_input("^" + target.assign_name);
  *restore_op = all->name();
  return Status::OK();
}

std::string SessionConfigBytes(const LoadOptions& options) {
  tensorflow::ConfigProto config;
  config.set_allow_soft_placement(true);
  if (options.intra_op_threads > 0)
    config.set_intra_op_parallelism_threads(options.intra_op_threads);
  if (options.inter_op_threads > 0)
    config.set_inter_op_parallelism_threads(options.inter_op_threads);
  return config.SerializeAsString();
}

Status RunTargets(TF_Session* session, const std::vector<TF_Operation*>& targets,
                  const std::string& what) {
  if (targets.empty()) return Status::OK();
  StatusPtr s = NewStatus();
  TF_SessionRun(session, nullptr, nullptr, nullptr, 0, nullptr, nullptr, 0, targets.data(),
                static_cast<int>(targets.size()), nullptr, s.get());
  if (TF_GetCode(s.get()) != TF_OK) return Internal(what + " failed: " + TF_Message(s.get()));
  return Status::OK();
}

}  // namespace

// ---- LoadedModule ---------------------------------------------------------------------------

LoadedModule::LoadedModule(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LoadedModule::~LoadedModule() = default;

Status LoadedModule::Load(const std::string& path, const LoadOptions& options,
                          std::unique_ptr<LoadedModule>* module) {
  std::unique_ptr<ModuleSpec> spec;
  HUBCORE_RETURN_IF_ERROR(ModuleSpec::Load(path, &spec));
  return Load(*spec, options, module);
}

Status LoadedModule::Load(const ModuleSpec& spec, const LoadOptions& options,
                          std::unique_ptr<LoadedModule>* module) {
  if (module == nullptr) return InvalidArgument("LoadedModule::Load: `module` is null");
  const internal::ModuleSpecData& data = spec.data();
  for (const std::string& lib : options.custom_op_libraries) {
    StatusPtr s = NewStatus();
    TF_Library* handle = TF_LoadLibrary(lib.c_str(), s.get());
    if (TF_GetCode(s.get()) != TF_OK) {
      return InvalidArgument("Cannot load custom op library '" + lib + "': " + TF_Message(s.get()));
    }
    TF_DeleteLibraryHandle(handle);  // Frees the op list only; the library stays loaded.
  }
  int index = -1;
  HUBCORE_RETURN_IF_ERROR(internal::FindVariant(data, options.tags, &index));
  if (options.safe_mode) HUBCORE_RETURN_IF_ERROR(CheckSafeMode(spec, options.tags));
  const GraphVariant& variant = data.variants[index];
  const tensorflow::MetaGraphDef& meta_graph = data.saved_model.meta_graphs(index);
  const std::string where =
      "Module " + data.path + " (graph variant " + variant.TagsToString() + ")";

  auto impl = std::make_unique<Impl>();
  impl->path = data.path;
  impl->tags = variant.tags;
  impl->signatures = variant.signatures;
  impl->graph = TF_NewGraph();

  tensorflow::GraphDef graph_def = meta_graph.graph_def();
  // Devices baked in at export time (e.g. /job:worker/task:3) would break local serving.
  for (auto& node : *graph_def.mutable_node()) node.clear_device();
  {
    std::vector<const tensorflow::NodeDef*> nodes;
    for (const auto& node : graph_def.node()) nodes.push_back(&node);
    HUBCORE_RETURN_IF_ERROR(
        internal::CheckOpsRegistered(nodes, graph_def.library(), where, "custom_op_libraries"));
  }
  std::string restore_op;
  HUBCORE_RETURN_IF_ERROR(AddRestoreNodes(data, variant, &graph_def, &restore_op));

  {
    const std::string bytes = graph_def.SerializeAsString();
    BufferPtr buf(TF_NewBufferFromString(bytes.data(), bytes.size()));
    TF_ImportGraphDefOptions* opts = TF_NewImportGraphDefOptions();
    StatusPtr s = NewStatus();
    TF_GraphImportGraphDef(impl->graph, buf.get(), opts, s.get());
    TF_DeleteImportGraphDefOptions(opts);
    if (TF_GetCode(s.get()) != TF_OK) {
      return DataLoss(where + ": cannot import the graph: " + TF_Message(s.get()));
    }
  }
  {
    TF_SessionOptions* opts = TF_NewSessionOptions();
    const std::string config = SessionConfigBytes(options);
    StatusPtr s = NewStatus();
    TF_SetConfig(opts, config.data(), config.size(), s.get());
    if (TF_GetCode(s.get()) == TF_OK) impl->session = TF_NewSession(impl->graph, opts, s.get());
    TF_DeleteSessionOptions(opts);
    if (TF_GetCode(s.get()) != TF_OK) {
      return Internal(where + ": cannot create a session: " + TF_Message(s.get()));
    }
  }
  if (!restore_op.empty()) {
    TF_Operation* op = TF_GraphOperationByName(impl->graph, restore_op.c_str());
    // The index and shard sizes were checked at load; what fails here is corrupt data.
    Status restored = RunTargets(impl->session, {op},
                                 where + ": restoring variables from " + data.checkpoint_prefix);
    if (!restored.ok()) return DataLoss(restored.message());
  }
  auto tables = meta_graph.collection_def().find("table_initializer");
  if (tables != meta_graph.collection_def().end()) {
    std::vector<TF_Operation*> targets;
    for (const std::string& name : tables->second.node_list().value()) {
      std::string node;
      int idx = 0;
      internal::ParseTensorName(name, &node, &idx);
      TF_Operation* op = TF_GraphOperationByName(impl->graph, node.c_str());
      if (op == nullptr) {
        return DataLoss(where + ": table initializer '" + name + "' is not in the graph");
      }
      targets.push_back(op);
    }
    Status initialized = RunTargets(impl->session, targets, where + ": initializing tables");
    if (!initialized.ok()) return DataLoss(initialized.message());
  }
  HUBCORE_RETURN_IF_ERROR(impl->Prepare());
  module->reset(new LoadedModule(std::move(impl)));
  return Status::OK();
}

const std::string& LoadedModule::path() const { return impl_->path; }
const std::set<std::string>& LoadedModule::tags() const { return impl_->tags; }
const std::vector<SignatureInfo>& LoadedModule::signatures() const { return impl_->signatures; }

const SignatureInfo* LoadedModule::FindSignature(const std::string& name) const {
  auto it = impl_->prepared.find(name);
  return it == impl_->prepared.end() ? nullptr : it->second.info;
}

namespace {

Status CheckComponent(const ComponentSpec& spec, const TF_Tensor* t, const TensorInfo& info,
                      const std::string& sig) {
  const std::string who = "Input '" + info.key + "' of signature '" + sig + "'";
  if (t == nullptr) return InvalidArgument(who + ": the " + spec.what + " tensor is null");
  const int dtype = TF_TensorType(t);
  if (dtype != spec.dtype) {
    return InvalidArgument(who + ": " + (info.kind == TensorKind::kDense ? "" : spec.what + " ") +
                           "expects dtype " + DataTypeName(spec.dtype) + ", got " +
                           DataTypeName(dtype));
  }
  if (spec.rank >= 0) {
    bool ok = TF_NumDims(t) == spec.rank;
    for (int d = 0; ok && d < spec.rank; ++d) {
      ok = spec.dims[d] < 0 || spec.dims[d] == TF_Dim(t, d);
    }
    if (!ok) {
      TensorShape expected;
      expected.unknown_rank = false;
      expected.dims = spec.dims;
      return InvalidArgument(who + ": " + (info.kind == TensorKind::kDense ? "" : spec.what + " ") +
                             "expects shape " + expected.ToString() + ", got shape " + ShapeOf(t));
    }
  }
  return Status::OK();
}

// Some TensorFlow kernels abort the process on inconsistent sparse or ragged components, and
// others silently compute garbage, so each such value is checked before TensorFlow sees it.
Status CheckSparseValue(const Value& v, const std::string& who) {
  const TF_Tensor* values = v.components()[0].get();
  const TF_Tensor* indices = v.components()[1].get();
  const TF_Tensor* dense_shape = v.components()[2].get();
  const int64_t nnz = TF_Dim(indices, 0);
  const int64_t rank = TF_Dim(indices, 1);
  if (TF_Dim(values, 0) != nnz) {
    return InvalidArgument(who + ": " + std::to_string(TF_Dim(values, 0)) + " values but " +
                           std::to_string(nnz) + " indices");
  }
  if (TF_Dim(dense_shape, 0) != rank) {
    return InvalidArgument(who + ": indices have rank " + std::to_string(rank) +
                           " but dense_shape has " + std::to_string(TF_Dim(dense_shape, 0)) +
                           " dimensions");
  }
  const auto* shape = static_cast<const int64_t*>(TF_TensorData(dense_shape));
  int64_t elements = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (shape[d] < 0 || __builtin_mul_overflow(elements, shape[d], &elements)) {
      return InvalidArgument(who + ": dense_shape " + ShapeOf(dense_shape) + " is invalid: " +
                             (shape[d] < 0 ? "a dimension is negative" : "its size overflows"));
    }
  }
  const auto* index = static_cast<const int64_t*>(TF_TensorData(indices));
  for (int64_t i = 0; i < nnz; ++i) {
    for (int64_t d = 0; d < rank; ++d) {
      const int64_t x = index[i * rank + d];
      if (x < 0 || x >= shape[d]) {
        return InvalidArgument(who + ": indices[" + std::to_string(i) + "][" + std::to_string(d) +
                               "] = " + std::to_string(x) + " is out of bounds for dense_shape " +
                               ShapeOf(dense_shape));
      }
    }
  }
  return Status::OK();
}

template <typename T>
Status CheckRowSplits(const TF_Tensor* t, int64_t nvals, const std::string& who,
                      const std::string& what) {
  const auto* splits = static_cast<const T*>(TF_TensorData(t));
  const int64_t n = TF_Dim(t, 0);
  if (n < 1 || splits[0] != 0) {
    return InvalidArgument(who + ": " + what + " must start with 0");
  }
  for (int64_t i = 1; i < n; ++i) {
    if (splits[i] < splits[i - 1]) {
      return InvalidArgument(who + ": " + what + " decreases at position " + std::to_string(i));
    }
  }
  if (static_cast<int64_t>(splits[n - 1]) != nvals) {
    return InvalidArgument(who + ": " + what + " ends at " + std::to_string(splits[n - 1]) +
                           " but the next level has " + std::to_string(nvals) + " rows");
  }
  return Status::OK();
}

Status CheckCompositeValue(const Value& v, const TensorInfo& info, const std::string& sig) {
  const std::string who = "Input '" + info.key + "' of signature '" + sig + "'";
  if (info.kind == TensorKind::kSparse) return CheckSparseValue(v, who);
  if (info.kind != TensorKind::kRagged) return Status::OK();
  const auto& c = v.components();
  for (size_t i = 1; i < c.size(); ++i) {
    const TF_Tensor* inner = i + 1 < c.size() ? c[i + 1].get() : c[0].get();
    const int64_t rows = TF_NumDims(inner) == 0 ? 0
                         : i + 1 < c.size()     ? TF_Dim(inner, 0) - 1
                                                : TF_Dim(inner, 0);
    if (TF_NumDims(inner) == 0) {
      return InvalidArgument(who + ": flat_values must have at least one dimension");
    }
    const std::string what = "row_splits_" + std::to_string(i - 1);
    Status s = TF_TensorType(c[i].get()) == TF_INT32
                   ? CheckRowSplits<int32_t>(c[i].get(), rows, who, what)
                   : CheckRowSplits<int64_t>(c[i].get(), rows, who, what);
    HUBCORE_RETURN_IF_ERROR(s);
  }
  return Status::OK();
}

// A new tensor with the same dtype, shape and contents (for an output fetched twice).
TensorPtr CopyTensor(const TF_Tensor* t) {
  std::vector<int64_t> dims(TF_NumDims(t));
  for (size_t d = 0; d < dims.size(); ++d) dims[d] = TF_Dim(t, static_cast<int>(d));
  const size_t bytes = TF_TensorByteSize(t);
  TensorPtr copy(
      TF_AllocateTensor(TF_TensorType(t), dims.data(), static_cast<int>(dims.size()), bytes));
  if (copy == nullptr || (bytes > 0 && TF_TensorData(copy.get()) == nullptr)) return nullptr;
  if (TF_TensorType(t) == TF_STRING) {
    const auto* src = static_cast<const TF_TString*>(TF_TensorData(t));
    auto* dst = static_cast<TF_TString*>(TF_TensorData(copy.get()));
    for (int64_t i = 0; i < TF_TensorElementCount(t); ++i) {
      TF_StringInit(&dst[i]);
      TF_StringCopy(&dst[i], TF_StringGetDataPointer(&src[i]), TF_StringGetSize(&src[i]));
    }
  } else if (bytes > 0) {
    std::memcpy(TF_TensorData(copy.get()), TF_TensorData(t), bytes);
  }
  return copy;
}

}  // namespace

Status LoadedModule::Run(const std::string& signature, const NamedValues& inputs,
                         const std::vector<std::string>& output_keys, NamedValues* outputs) const {
  if (outputs == nullptr) return InvalidArgument("LoadedModule::Run: `outputs` is null");
  auto sig_it = impl_->prepared.find(signature);
  if (sig_it == impl_->prepared.end()) {
    std::vector<std::string> names;
    for (const auto& s : impl_->signatures) names.push_back(s.name);
    return SignatureNotFound("Unknown signature '" + signature +
                             "'. The module's signatures: " + JoinQuoted(names));
  }
  const PreparedSignature& p = sig_it->second;

  std::vector<TF_Output> feeds;
  std::vector<TF_Tensor*> feed_values;
  for (const PreparedInput& in : p.inputs) {
    auto it = inputs.find(in.info->key);
    if (it == inputs.end()) {
      std::vector<std::string> names;
      for (const auto& i : p.inputs) names.push_back(i.info->key);
      return InvalidArgument("Signature '" + signature + "' needs input '" + in.info->key +
                             "', which is missing. Its inputs: " + JoinQuoted(names));
    }
    const Value& v = it->second;
    if (v.kind() != in.info->kind || v.components().size() != in.components.size()) {
      return InvalidArgument("Input '" + in.info->key + "' of signature '" + signature + "' is " +
                             KindName(in.info->kind) + " (" + std::to_string(in.components.size()) +
                             " component tensors), got a " + KindName(v.kind()) + " value with " +
                             std::to_string(v.components().size()));
    }
    for (size_t c = 0; c < in.components.size(); ++c) {
      HUBCORE_RETURN_IF_ERROR(
          CheckComponent(in.components[c], v.components()[c].get(), *in.info, signature));
      feeds.push_back(in.components[c].output);
      feed_values.push_back(v.components()[c].get());
    }
    HUBCORE_RETURN_IF_ERROR(CheckCompositeValue(v, *in.info, signature));
  }
  if (inputs.size() != p.inputs.size()) {
    std::vector<std::string> names;
    for (const auto& i : p.inputs) names.push_back(i.info->key);
    for (const auto& [key, value] : inputs) {
      if (p.info->FindInput(key) == nullptr) {
        return InvalidArgument("Signature '" + signature + "' has no input '" + key +
                               "'. Its inputs: " + JoinQuoted(names));
      }
    }
  }

  // Which outputs (each once), and which distinct tensors to fetch for them.
  std::vector<const PreparedOutput*> wanted;
  if (output_keys.empty()) {
    for (const auto& o : p.outputs) wanted.push_back(&o);
  } else {
    for (const std::string& key : output_keys) {
      const PreparedOutput* found = nullptr;
      for (const auto& o : p.outputs) {
        if (o.info->key == key) found = &o;
      }
      if (found == nullptr) {
        std::vector<std::string> names;
        for (const auto& o : p.outputs) names.push_back(o.info->key);
        return InvalidArgument("Signature '" + signature + "' has no output '" + key +
                               "'. Its outputs: " + JoinQuoted(names));
      }
      if (std::find(wanted.begin(), wanted.end(), found) == wanted.end()) wanted.push_back(found);
    }
  }
  std::vector<TF_Output> fetches;
  std::vector<int> slot(p.fetches.size(), -1);  // p.fetches index -> fetches index
  for (const PreparedOutput* o : wanted) {
    for (int f : o->fetch_index) {
      if (slot[f] < 0 && p.fed_by[f] < 0) {
        slot[f] = static_cast<int>(fetches.size());
        fetches.push_back(p.fetches[f]);
      }
    }
  }

  std::vector<TF_Tensor*> fetched(fetches.size(), nullptr);
  StatusPtr s = NewStatus();
  TF_SessionRun(impl_->session, nullptr, feeds.data(), feed_values.data(),
                static_cast<int>(feeds.size()), fetches.data(), fetched.data(),
                static_cast<int>(fetches.size()), nullptr, 0, nullptr, s.get());
  std::vector<TensorPtr> owned;
  owned.reserve(fetched.size());
  for (TF_Tensor* t : fetched) owned.emplace_back(t);
  if (TF_GetCode(s.get()) != TF_OK) {
    return FromTfStatus(s.get(), "Running signature '" + signature + "' of " + impl_->path);
  }

  // The first output using a fetched tensor takes it; later ones (and outputs that echo an input)
  // get copies. `fetched` keeps pointing at each tensor while its first user holds it.
  outputs->clear();
  for (const PreparedOutput* o : wanted) {
    std::vector<TensorPtr> components;
    for (int f : o->fetch_index) {
      if (p.fed_by[f] >= 0) {
        components.push_back(CopyTensor(feed_values[p.fed_by[f]]));
      } else if (owned[slot[f]] != nullptr) {
        components.push_back(std::move(owned[slot[f]]));
      } else {
        components.push_back(CopyTensor(fetched[slot[f]]));
      }
      if (components.back() == nullptr) {
        return Internal("Running signature '" + signature + "': out of memory copying output '" +
                        o->info->key + "'");
      }
    }
    (*outputs)[o->info->key] = Value::FromComponents(o->info->kind, std::move(components));
  }
  return Status::OK();
}

}  // namespace hubcore
