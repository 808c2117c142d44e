// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Safe mode's op policy (docs/security.md): which op types are pure computation, which touch files,
// the network or other processes, and the one check that refuses a graph variant using anything
// outside the allowlist.
#include "hubcore/op_policy.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "module_spec_data.h"
#include "tensorflow/core/framework/function.pb.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"

namespace fs = std::filesystem;

namespace hubcore {
namespace {

using OpSet = std::unordered_set<std::string>;

// Pure computation: no files, network, processes or host state beyond the session's own memory.
const OpSet& ComputeOps() {
  static const auto* ops = new OpSet{
      // math
      "Abs", "Acos", "Acosh", "Add", "AddN", "AddV2", "All", "Angle", "Any", "ApproximateEqual",
      "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atan2", "Atanh", "BatchMatMul", "BatchMatMulV2",
      "BatchMatMulV3", "BesselI0e", "BesselI1e", "Betainc", "BiasAdd", "BiasAddV1", "Bincount",
      "Bitcast", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BroadcastArgs", "BroadcastGradientArgs",
      "BroadcastTo", "Bucketize", "Cast", "Ceil", "CheckNumerics", "CheckNumericsV2", "ClipByValue",
      "Complex", "ComplexAbs", "Conj", "Cos", "Cosh", "Cross", "Cumprod", "Cumsum",
      "CumulativeLogsumexp", "Digamma", "Div", "DivNoNan", "Equal", "Erf", "Erfc", "Erfinv", "Exp",
      "Expm1", "Floor", "FloorDiv", "FloorMod", "Greater", "GreaterEqual", "Igamma", "Igammac",
      "Imag", "Inv", "InvGrad", "Invert", "IsFinite", "IsInf", "IsNan", "LeftShift", "Less",
      "LessEqual", "Lgamma", "LinSpace", "Log", "Log1p", "LogicalAnd", "LogicalNot", "LogicalOr",
      "MatMul", "Max", "Maximum", "Mean", "Min", "Minimum", "Mod", "Mul", "MulNoNan", "Ndtri",
      "Neg", "NextAfter", "NotEqual", "PopulationCount", "Pow", "Prod", "Range", "Real", "RealDiv",
      "Reciprocal", "ReciprocalGrad", "RightShift", "Rint", "Round", "Rsqrt", "RsqrtGrad", "Select",
      "SelectV2", "Sigmoid", "SigmoidGrad", "Sign", "Sin", "Sinh", "Softplus", "SoftplusGrad",
      "Softsign", "SoftsignGrad", "Sqrt", "SqrtGrad", "Square", "SquaredDifference", "Sub", "Sum",
      "Tan", "Tanh", "TanhGrad", "TruncateDiv", "TruncateMod", "Xdivy", "Xlog1py", "Xlogy", "Zeta",
      // array and shape
      "BatchToSpace", "BatchToSpaceND", "Concat", "ConcatOffset", "ConcatV2", "Const", "DeepCopy",
      "DepthToSpace", "Diag", "DiagPart", "Empty", "EnsureShape", "ExpandDims",
      "ExtractImagePatches", "Fill", "Gather", "GatherNd", "GatherV2", "Identity", "IdentityN",
      "InplaceAdd", "InplaceSub", "InplaceUpdate", "InvertPermutation", "ListDiff",
      "MatrixBandPart", "MatrixDiag", "MatrixDiagPart", "MatrixDiagPartV2", "MatrixDiagPartV3",
      "MatrixDiagV2", "MatrixDiagV3", "MatrixSetDiag", "MatrixSetDiagV2", "MatrixSetDiagV3",
      "MirrorPad", "MirrorPadGrad", "OneHot", "OnesLike", "Pack", "Pad", "PadV2", "ParallelConcat",
      "Placeholder", "PlaceholderWithDefault", "PreventGradient", "Rank", "Reshape",
      "ResourceStridedSliceAssign", "Reverse", "ReverseSequence", "ReverseV2", "Roll", "ScatterNd",
      "ScatterNdNonAliasingAdd", "Shape", "ShapeN", "Size", "Slice", "Snapshot", "SpaceToBatch",
      "SpaceToBatchND", "SpaceToDepth", "Split", "SplitV", "Squeeze", "StopGradient",
      "StridedSlice", "StridedSliceGrad", "Tile", "TileGrad", "Transpose", "Unique", "UniqueV2",
      "UniqueWithCounts", "UniqueWithCountsV2", "Unpack", "UnravelIndex", "Where", "ZerosLike",
      "NoOp",
      // segment, scatter and sort
      "TensorScatterAdd", "TensorScatterMax", "TensorScatterMin", "TensorScatterSub",
      "TensorScatterUpdate", "SegmentMax", "SegmentMean", "SegmentMin", "SegmentProd", "SegmentSum",
      "SparseSegmentMean", "SparseSegmentMeanWithNumSegments", "SparseSegmentSqrtN",
      "SparseSegmentSqrtNWithNumSegments", "SparseSegmentSum", "SparseSegmentSumWithNumSegments",
      "UnsortedSegmentMax", "UnsortedSegmentMin", "UnsortedSegmentProd", "UnsortedSegmentSum",
      "DynamicPartition", "DynamicStitch", "ParallelDynamicStitch", "TopK", "TopKV2", "NthElement",
      "EuclideanNorm",
      // neural network
      "AvgPool", "AvgPool3D", "AvgPoolGrad", "Conv", "Conv2D", "Conv2DBackpropFilter",
      "Conv2DBackpropInput", "Conv3D", "Conv3DBackpropInputV2", "Conv3DBackpropFilterV2",
      "DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropFilter",
      "DepthwiseConv2dNativeBackpropInput", "Dilation2D", "Elu", "EluGrad", "FusedBatchNorm",
      "FusedBatchNormV2", "FusedBatchNormV3", "FusedBatchNormGrad", "FusedBatchNormGradV2",
      "FusedBatchNormGradV3", "FusedPadConv2D", "FusedResizeAndPadConv2D", "InTopK", "InTopKV2",
      "L2Loss", "LRN", "LRNGrad", "LeakyRelu", "LeakyReluGrad", "LogSoftmax", "MaxPool",
      "MaxPool3D", "MaxPoolGrad", "MaxPoolGradV2", "MaxPoolV2", "MaxPoolWithArgmax", "Relu",
      "Relu6", "Relu6Grad", "ReluGrad", "Selu", "SeluGrad", "Softmax",
      "SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits",
      "BatchNormWithGlobalNormalization",
      // linear algebra and FFT
      "Cholesky", "Einsum", "LogMatrixDeterminant", "MatrixDeterminant", "MatrixInverse",
      "MatrixSolve", "MatrixTriangularSolve", "Qr", "SelfAdjointEigV2", "Svd", "FFT", "IFFT",
      "RFFT", "IRFFT", "FFT2D", "IFFT2D", "RFFT2D", "IRFFT2D",
      // image
      "AdjustContrastv2", "AdjustHue", "AdjustSaturation", "CropAndResize", "DecodeAndCropJpeg",
      "DecodeBmp", "DecodeGif", "DecodeImage", "DecodeJpeg", "DecodePng", "EncodeJpeg", "EncodePng",
      "ExtractGlimpseV2", "HSVToRGB", "NonMaxSuppression", "NonMaxSuppressionV2",
      "NonMaxSuppressionV3", "NonMaxSuppressionV4", "NonMaxSuppressionV5", "RGBToHSV", "ResizeArea",
      "ResizeBicubic", "ResizeBilinear", "ResizeNearestNeighbor", "ScaleAndTranslate",
      "DrawBoundingBoxesV2",
      // strings and parsing
      "AsString", "DecodeBase64", "EncodeBase64", "ReduceJoin", "RegexFullMatch", "RegexReplace",
      "StaticRegexFullMatch", "StaticRegexReplace", "StringFormat", "StringJoin", "StringLength",
      "StringLower", "StringNGrams", "StringSplit", "StringSplitV2", "StringStrip",
      "StringToHashBucket", "StringToHashBucketFast", "StringToHashBucketStrong", "StringToNumber",
      "StringUpper", "Substr", "UnicodeDecode", "UnicodeDecodeWithOffsets", "UnicodeEncode",
      "UnicodeScript", "UnicodeTranscode", "UnsortedSegmentJoin", "DecodeRaw", "DecodeCSV",
      "DecodeCompressed", "ParseExample", "ParseExampleV2", "ParseSingleExample",
      "ParseSequenceExample", "ParseSequenceExampleV2", "ParseTensor", "SerializeTensor",
      "Fingerprint",
      // sparse
      "AddManySparseToTensorsMap", "DenseToDenseSetOperation", "DenseToSparseSetOperation",
      "SparseAdd", "SparseConcat", "SparseCross", "SparseCrossHashed", "SparseCrossV2",
      "SparseFillEmptyRows", "SparseReduceMax", "SparseReduceMaxSparse", "SparseReduceSum",
      "SparseReduceSumSparse", "SparseReorder", "SparseReshape", "SparseSlice", "SparseSoftmax",
      "SparseSparseMaximum", "SparseSparseMinimum", "SparseSplit", "SparseTensorDenseAdd",
      "SparseTensorDenseMatMul", "SparseToDense", "SparseToSparseSetOperation", "SparseMatMul",
      "SparseDenseCwiseAdd", "SparseDenseCwiseDiv", "SparseDenseCwiseMul", "SparseBincount",
      "DenseBincount",
      // ragged
      "RaggedGather", "RaggedRange", "RaggedTensorFromVariant", "RaggedTensorToSparse",
      "RaggedTensorToTensor", "RaggedTensorToVariant", "RaggedCross", "RaggedBincount",
      // control flow and functions
      "Enter", "Exit", "LoopCond", "Merge", "NextIteration", "RefEnter", "RefExit", "RefMerge",
      "RefNextIteration", "RefSwitch", "Switch", "ControlTrigger", "If", "StatelessIf", "While",
      "StatelessWhile", "Case", "StatelessCase", "PartitionedCall", "StatefulPartitionedCall",
      "Assert",
      // variables
      "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp",
      "AssignSubVariableOp", "DestroyResourceOp", "IsVariableInitialized", "ReadVariableOp",
      "ResourceGather", "ResourceGatherNd", "ResourceScatterAdd", "ResourceScatterUpdate",
      "ScatterAdd", "ScatterUpdate", "TemporaryVariable", "DestroyTemporaryVariable", "VarHandleOp",
      "VarIsInitializedOp", "Variable", "VariableShape", "VariableV2",
      // lookup tables (in memory)
      "HashTable", "HashTableV2", "MutableHashTable", "MutableHashTableV2",
      "MutableHashTableOfTensors", "MutableHashTableOfTensorsV2", "MutableDenseHashTable",
      "MutableDenseHashTableV2", "InitializeTable", "InitializeTableV2", "LookupTableExport",
      "LookupTableExportV2", "LookupTableFind", "LookupTableFindV2", "LookupTableImport",
      "LookupTableImportV2", "LookupTableInsert", "LookupTableInsertV2", "LookupTableRemoveV2",
      "LookupTableSize", "LookupTableSizeV2", "AnonymousHashTable", "AnonymousMutableHashTable",
      // random numbers
      "Multinomial", "ParameterizedTruncatedNormal", "RandomGamma", "RandomPoisson",
      "RandomPoissonV2", "RandomShuffle", "RandomStandardNormal", "RandomUniform",
      "RandomUniformInt", "StatelessMultinomial", "StatelessRandomNormal",
      "StatelessRandomNormalV2", "StatelessRandomUniform", "StatelessRandomUniformInt",
      "StatelessRandomUniformV2", "StatelessRandomUniformIntV2", "StatelessRandomUniformFullIntV2",
      "StatelessTruncatedNormal", "StatelessTruncatedNormalV2", "StatelessRandomGetKeyCounter",
      "StatelessRandomGetKeyCounterAlg", "StatelessRandomGetAlg", "TruncatedNormal",
      // tensor arrays, lists, optionals
      "TensorArray", "TensorArrayV2", "TensorArrayV3", "TensorArrayCloseV3", "TensorArrayConcatV3",
      "TensorArrayGatherV3", "TensorArrayGradV3", "TensorArrayReadV3", "TensorArrayScatterV3",
      "TensorArraySizeV3", "TensorArraySplitV3", "TensorArrayWriteV3", "EmptyTensorList",
      "TensorListConcatV2", "TensorListElementShape", "TensorListFromTensor", "TensorListGather",
      "TensorListGetItem", "TensorListLength", "TensorListPopBack", "TensorListPushBack",
      "TensorListReserve", "TensorListResize", "TensorListScatterIntoExistingList",
      "TensorListSetItem", "TensorListSplit", "TensorListStack", "OptionalFromValue",
      "OptionalGetValue", "OptionalHasValue", "OptionalNone",
      // quantization
      "QuantizeV2", "Dequantize", "QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3",
      "QuantizeAndDequantizeV4", "FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVars",
      "FakeQuantWithMinMaxVarsPerChannel"};
  return *ops;
}

// Reads a vocabulary file into a table: allowed in safe mode only on the module's own assets.
const OpSet& AssetReadOps() {
  static const auto* ops =
      new OpSet{"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"};
  return *ops;
}

const OpSet& FileOps() {
  static const auto* ops = new OpSet{"ReadFile",
                                     "WriteFile",
                                     "MatchingFiles",
                                     "Save",
                                     "SaveV2",
                                     "SaveSlices",
                                     "Restore",
                                     "RestoreV2",
                                     "RestoreSlice",
                                     "MergeV2Checkpoints",
                                     "ImmutableConst",
                                     "LoadAndRemapMatrix",
                                     "GenerateVocabRemapping",
                                     "WholeFileReader",
                                     "WholeFileReaderV2",
                                     "TextLineReader",
                                     "TextLineReaderV2",
                                     "TFRecordReader",
                                     "TFRecordReaderV2",
                                     "FixedLengthRecordReader",
                                     "FixedLengthRecordReaderV2",
                                     "LMDBReader",
                                     "TextLineDataset",
                                     "TFRecordDataset",
                                     "TFRecordDatasetV2",
                                     "FixedLengthRecordDataset",
                                     "FixedLengthRecordDatasetV2",
                                     "CSVDataset",
                                     "CSVDatasetV2",
                                     "ExperimentalCSVDataset",
                                     "LMDBDataset",
                                     "ExperimentalLMDBDataset",
                                     "MatchingFilesDataset",
                                     "ExperimentalMatchingFilesDataset",
                                     "CacheDataset",
                                     "CacheDatasetV2",
                                     "SnapshotDataset",
                                     "SnapshotDatasetV2",
                                     "SaveDataset",
                                     "SaveDatasetV2",
                                     "LoadDataset",
                                     "DatasetToTFRecord",
                                     "ExperimentalDatasetToTFRecord",
                                     "DistributedSave",
                                     "CreateSummaryFileWriter",
                                     "CreateSummaryDbWriter",
                                     "WriteSummary",
                                     "WriteScalarSummary",
                                     "WriteHistogramSummary",
                                     "WriteImageSummary",
                                     "WriteAudioSummary",
                                     "WriteGraphSummary",
                                     "WriteRawProtoSummary",
                                     "FlushSummaryWriter",
                                     "SqlDataset",
                                     "ExperimentalSqlDataset",
                                     "Print",
                                     "PrintV2",
                                     "DebugIdentity",
                                     "DebugIdentityV2",
                                     "DebugIdentityV3",
                                     "FileSystemSetConfiguration"};
  return *ops;
}

const OpSet& NetworkOps() {
  static const auto* ops = new OpSet{"Send",
                                     "Recv",
                                     "_Send",
                                     "_Recv",
                                     "_HostSend",
                                     "_HostRecv",
                                     "RemoteCall",
                                     "DataServiceDataset",
                                     "DataServiceDatasetV2",
                                     "DataServiceDatasetV3",
                                     "DataServiceDatasetV4",
                                     "RegisterDataset",
                                     "RegisterDatasetV2",
                                     "CollectiveReduce",
                                     "CollectiveReduceV2",
                                     "CollectiveReduceV3",
                                     "CollectiveGather",
                                     "CollectiveGatherV2",
                                     "CollectiveBcastSend",
                                     "CollectiveBcastSendV2",
                                     "CollectiveBcastRecv",
                                     "CollectiveBcastRecvV2",
                                     "CollectiveAllToAllV2",
                                     "CollectiveAllToAllV3",
                                     "CollectivePermute",
                                     "CollectiveReduceScatterV2",
                                     "CollectiveInitializeCommunicator"};
  return *ops;
}

const OpSet& ProcessOps() {
  static const auto* ops = new OpSet{"PyFunc", "PyFuncStateless", "EagerPyFunc"};
  return *ops;
}

// Visits every node of the variant: the graph's, then each library function's ("fn/node").
// Calls of library functions are not ops; the function's own nodes are visited instead.
template <typename Visit>
void ForEachNode(const tensorflow::GraphDef& graph, Visit visit) {
  std::unordered_set<std::string> functions;
  for (const auto& f : graph.library().function()) functions.insert(f.signature().name());
  for (const auto& node : graph.node()) {
    if (!functions.count(node.op())) visit(node, node.name(), false);
  }
  for (const auto& f : graph.library().function()) {
    for (const auto& node : f.node_def()) {
      if (!functions.count(node.op())) visit(node, f.signature().name() + "/" + node.name(), true);
    }
  }
}

bool IsInside(const std::string& path, const std::string& dir) {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec) return false;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) return false;
  const fs::path inside = real.lexically_relative(root);
  return !inside.empty() && *inside.begin() != "..";
}

// Whether `node` (a table initializer from a text file, in the top-level graph) reads one of the
// module's own files: its filename input is, through Identity nodes, a string Const whose real
// path lies inside the module directory.
bool ReadsOwnAsset(const tensorflow::NodeDef& node,
                   const std::unordered_map<std::string, const tensorflow::NodeDef*>& by_name,
                   const std::string& module_dir) {
  if (module_dir.empty() || node.input_size() < 2) return false;
  const tensorflow::NodeDef* source = &node;
  std::string input = node.input(1);
  for (int hops = 0; hops < 16; ++hops) {
    std::string name;
    int index = 0;
    internal::ParseTensorName(input, &name, &index);
    auto it = by_name.find(name);
    if (it == by_name.end() || index != 0) return false;
    source = it->second;
    if (source->op() != "Identity" || source->input_size() < 1) break;
    input = source->input(0);
  }
  if (source->op() != "Const") return false;
  auto value = source->attr().find("value");
  return value != source->attr().end() && value->second.tensor().string_val_size() == 1 &&
         IsInside(value->second.tensor().string_val(0), module_dir);
}

Status FindVariantGraph(const ModuleSpec& spec, const std::set<std::string>& tags,
                        const tensorflow::MetaGraphDef** meta_graph) {
  int index = -1;
  HUBCORE_RETURN_IF_ERROR(internal::FindVariant(spec.data(), tags, &index));
  *meta_graph = &spec.data().saved_model.meta_graphs(index);
  return Status::OK();
}

}  // namespace

namespace internal {

Status CheckOpsRegistered(const std::vector<const tensorflow::NodeDef*>& nodes,
                          const tensorflow::FunctionDefLibrary& library, const std::string& where,
                          const std::string& how_to_load, const std::string& node_scope) {
  std::unordered_set<std::string> functions;
  for (const auto& f : library.function()) functions.insert(f.signature().name());
  std::map<std::string, std::string> used;  // Op type -> the first node using it.
  for (const auto* node : nodes) {
    used.emplace(node->op(), node_scope.empty() ? node->name() : node_scope + "/" + node->name());
  }
  for (const auto& f : library.function()) {
    for (const auto& node : f.node_def()) {
      used.emplace(node.op(), f.signature().name() + "/" + node.name());
    }
  }
  for (const auto& [op, node] : used) {
    const tensorflow::OpRegistrationData* data = nullptr;
    if (functions.count(op) || tensorflow::OpRegistry::Global()->LookUp(op, &data).ok()) continue;
    return FailedPrecondition(where + " uses op type '" + op + "' (node '" + node +
                              "'), which is not registered in this TensorFlow. If it is a custom "
                              "op, load its library first (" +
                              how_to_load + ").");
  }
  return Status::OK();
}

}  // namespace internal

const char* OpEffectName(OpEffect effect) {
  switch (effect) {
    case OpEffect::kCompute:
      return "compute";
    case OpEffect::kAssetRead:
      return "reads assets";
    case OpEffect::kFile:
      return "files";
    case OpEffect::kNetwork:
      return "network";
    case OpEffect::kProcess:
      return "process";
    case OpEffect::kUnknown:
      return "not allowlisted";
  }
  return "?";
}

OpEffect ClassifyOp(const std::string& op_type) {
  if (ComputeOps().count(op_type)) return OpEffect::kCompute;
  if (AssetReadOps().count(op_type)) return OpEffect::kAssetRead;
  if (FileOps().count(op_type)) return OpEffect::kFile;
  if (NetworkOps().count(op_type)) return OpEffect::kNetwork;
  if (ProcessOps().count(op_type)) return OpEffect::kProcess;
  return OpEffect::kUnknown;
}

std::vector<std::string> SafeModeAllowlist() {
  std::vector<std::string> ops(ComputeOps().begin(), ComputeOps().end());
  ops.insert(ops.end(), AssetReadOps().begin(), AssetReadOps().end());
  std::sort(ops.begin(), ops.end());
  return ops;
}

Status ListOpTypes(const ModuleSpec& spec, const std::set<std::string>& tags,
                   std::vector<OpTypeUse>* uses) {
  const tensorflow::MetaGraphDef* meta_graph = nullptr;
  HUBCORE_RETURN_IF_ERROR(FindVariantGraph(spec, tags, &meta_graph));
  std::map<std::string, OpTypeUse> by_op;
  ForEachNode(meta_graph->graph_def(),
              [&](const tensorflow::NodeDef& node, const std::string& name, bool) {
                OpTypeUse& use = by_op[node.op()];
                if (use.count++ == 0) {
                  use.op = node.op();
                  use.effect = ClassifyOp(node.op());
                  use.first_node = name;
                }
              });
  uses->clear();
  for (auto& [op, use] : by_op) uses->push_back(std::move(use));
  return Status::OK();
}

Status CheckSafeMode(const ModuleSpec& spec, const std::set<std::string>& tags) {
  const tensorflow::MetaGraphDef* meta_graph = nullptr;
  HUBCORE_RETURN_IF_ERROR(FindVariantGraph(spec, tags, &meta_graph));
  std::unordered_map<std::string, const tensorflow::NodeDef*> by_name;
  for (const auto& node : meta_graph->graph_def().node()) by_name[node.name()] = &node;
  Status refused;
  ForEachNode(meta_graph->graph_def(), [&](const tensorflow::NodeDef& node, const std::string& name,
                                           bool in_function) {
    if (!refused.ok()) return;
    const OpEffect effect = ClassifyOp(node.op());
    if (effect == OpEffect::kCompute) return;
    if (effect == OpEffect::kAssetRead && !in_function &&
        ReadsOwnAsset(node, by_name, spec.path())) {
      return;
    }
    const std::string why =
        effect == OpEffect::kAssetRead ? "reads a file that is not one of the module's own assets"
        : effect == OpEffect::kUnknown ? "is not in the safe-mode allowlist of pure compute ops"
                                       : std::string("touches ") + OpEffectName(effect);
    refused = PermissionDenied("Safe mode refuses module " + spec.path() + ": node '" + name +
                               "' uses op '" + node.op() + "', which " + why);
  });
  return refused;
}

}  // namespace hubcore
