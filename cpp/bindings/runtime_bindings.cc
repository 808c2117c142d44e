// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Bindings for hubcore::LoadedModule: numpy arrays <-> TF_Tensor at the edge, the GIL released
// while the module loads and while TensorFlow runs. hubcore.runner builds the Pythonic API on top.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bindings_common.h"
#include "hubcore/runtime.h"
#include "tensorflow/c/tf_tstring.h"

namespace py = pybind11;

namespace hubcore::python {
namespace {

Status BadInput(const std::string& where, const std::string& what) {
  return InvalidArgument(where + ": " + what);
}

Status OutOfMemory(const std::string& where, size_t bytes) {
  return InvalidArgument(where + ": cannot allocate " + std::to_string(bytes) +
                         " bytes for the input tensor (out of memory)");
}

// The types numpy lacks, which ml_dtypes (a TensorFlow dependency) provides under the names
// DataTypeName gives them.
bool IsMlDtype(int type) {
  switch (type) {
    case TF_BFLOAT16:
    case TF_FLOAT8_E5M2:
    case TF_FLOAT8_E4M3FN:
    case TF_FLOAT8_E4M3FNUZ:
    case TF_FLOAT8_E4M3B11FNUZ:
    case TF_FLOAT8_E5M2FNUZ:
    case TF_INT4:
    case TF_UINT4:
    case TF_INT2:
    case TF_UINT2:
    case TF_FLOAT4_E2M1FN:
      return true;
    default:
      return false;
  }
}

bool MlDtype(int type, py::dtype* out) {
  try {
    *out = py::dtype::from_args(py::module_::import("ml_dtypes").attr(DataTypeName(type).c_str()));
    return true;
  } catch (const py::error_already_set&) {
    return false;
  }
}

// Types whose numpy dtype has the same name and memory layout (DataTypeName spells both).
bool HasNumpyLayout(int type) {
  switch (type) {
    case TF_STRING:
    case TF_RESOURCE:
    case TF_VARIANT:
      return false;
    default:
      return !IsMlDtype(type) && DataTypeFromName(DataTypeName(type)) == type;
  }
}

// TF_DataType for a numpy dtype, or -1 (strings are handled separately).
int TfTypeOf(const py::dtype& dtype) {
  const char kind = dtype.kind();
  if (kind == 'S' || kind == 'O') return TF_STRING;
  const int type = DataTypeFromName(py::str(dtype.attr("name")));
  if (HasNumpyLayout(type)) return type;
  py::dtype ml;
  return IsMlDtype(type) && MlDtype(type, &ml) && ml.equal(dtype) ? type : -1;
}

// The numpy dtype for a TF_DataType (numeric types, including ml_dtypes' ones).
bool NumpyTypeOf(TF_DataType type, py::dtype* out) {
  if (HasNumpyLayout(type)) {
    *out = py::dtype(DataTypeName(type));
    return true;
  }
  return IsMlDtype(type) && MlDtype(type, out);
}

// String tensors are allocated here (64-byte aligned, so TF_NewTensor never copies them) and
// their elements released by this deallocator: TF_DeleteTensor alone would leak long strings.
void DeallocateStrings(void* data, size_t len, void*) {
  auto* strings = static_cast<TF_TString*>(data);
  for (size_t i = 0; i < len / sizeof(TF_TString); ++i) TF_StringDealloc(&strings[i]);
  std::free(data);
}

TensorPtr NewStringTensor(const std::vector<int64_t>& dims, int64_t count) {
  const size_t len = static_cast<size_t>(count) * sizeof(TF_TString);
  const size_t alloc = ((len + 63) / 64) * 64 + 64;
  void* data = std::aligned_alloc(64, alloc);
  if (data == nullptr) return nullptr;
  auto* strings = static_cast<TF_TString*>(data);
  for (int64_t i = 0; i < count; ++i) TF_StringInit(&strings[i]);
  return TensorPtr(TF_NewTensor(TF_STRING, dims.data(), static_cast<int>(dims.size()), data, len,
                                &DeallocateStrings, nullptr));
}

// Converts one numpy array (any layout) to a new TF_Tensor; `where` names it in errors.
TensorPtr ToTensor(const py::handle& obj, const std::string& where) {
  py::array arr = py::array::ensure(obj, py::array::c_style);
  if (!arr) {
    PyErr_Clear();
    throw StatusError(BadInput(where, "expected a numpy array"));
  }
  if (!arr.dtype().attr("isnative").cast<bool>()) {
    // A byte-swapped array (">f4" on this little-endian machine) would be read as garbage.
    arr = py::array::ensure(arr.attr("astype")(arr.dtype().attr("newbyteorder")("=")),
                            py::array::c_style);
  }
  const int type = TfTypeOf(arr.dtype());
  if (type < 0) {
    throw StatusError(
        BadInput(where, "unsupported numpy dtype " + std::string(py::str(arr.dtype()))));
  }
  std::vector<int64_t> dims(arr.ndim());
  for (size_t d = 0; d < dims.size(); ++d) dims[d] = arr.shape(d);
  const int64_t count = arr.size();
  if (type != TF_STRING) {
    const size_t bytes = static_cast<size_t>(arr.nbytes());
    TensorPtr t(TF_AllocateTensor(static_cast<TF_DataType>(type), dims.data(),
                                  static_cast<int>(dims.size()), bytes));
    // TF_AllocateTensor returns NULL, or a tensor without data, when the allocation fails.
    if (t == nullptr || (bytes > 0 && TF_TensorData(t.get()) == nullptr)) {
      throw StatusError(OutOfMemory(where, bytes));
    }
    if (bytes > 0) std::memcpy(TF_TensorData(t.get()), arr.data(), bytes);
    return t;
  }
  TensorPtr t = NewStringTensor(dims, count);
  if (t == nullptr) throw StatusError(OutOfMemory(where, count * sizeof(TF_TString)));
  auto* strings = static_cast<TF_TString*>(TF_TensorData(t.get()));
  if (arr.dtype().kind() == 'S') {
    const auto width = static_cast<size_t>(arr.itemsize());
    const char* base = static_cast<const char*>(arr.data());
    for (int64_t i = 0; i < count; ++i) {
      // numpy pads shorter items with trailing NULs (and drops them when reading an item); a NUL
      // inside the bytes is data.
      const char* s = base + i * width;
      size_t size = width;
      while (size > 0 && s[size - 1] == '\0') --size;
      TF_StringCopy(&strings[i], s, size);
    }
    return t;
  }
  auto* const* objects = static_cast<PyObject* const*>(arr.data());
  for (int64_t i = 0; i < count; ++i) {
    PyObject* o = objects[i];
    char* data = nullptr;
    Py_ssize_t size = 0;
    if (PyBytes_Check(o)) {
      PyBytes_AsStringAndSize(o, &data, &size);
    } else if (PyUnicode_Check(o)) {
      const char* utf8 = PyUnicode_AsUTF8AndSize(o, &size);
      if (utf8 == nullptr) {
        PyErr_Clear();
        throw StatusError(BadInput(where, "element " + std::to_string(i) + " is not valid text"));
      }
      data = const_cast<char*>(utf8);
    } else {
      throw StatusError(BadInput(where, "element " + std::to_string(i) + " is " +
                                            std::string(py::str(py::type::of(o).attr("__name__"))) +
                                            ", expected bytes or str"));
    }
    TF_StringCopy(&strings[i], data, static_cast<size_t>(size));
  }
  return t;
}

// Converts an output tensor to numpy, taking ownership (numeric data is shared, not copied).
py::array ToNumpy(TensorPtr t) {
  std::vector<py::ssize_t> shape(TF_NumDims(t.get()));
  for (size_t d = 0; d < shape.size(); ++d) shape[d] = TF_Dim(t.get(), static_cast<int>(d));
  const TF_DataType type = TF_TensorType(t.get());
  const int64_t count = TF_TensorElementCount(t.get());
  if (type == TF_STRING) {
    py::array out(py::dtype("O"), shape);
    auto** objects = static_cast<PyObject**>(out.mutable_data());
    const auto* strings = static_cast<const TF_TString*>(TF_TensorData(t.get()));
    for (int64_t i = 0; i < count; ++i) {
      PyObject* b =
          PyBytes_FromStringAndSize(TF_StringGetDataPointer(&strings[i]),
                                    static_cast<Py_ssize_t>(TF_StringGetSize(&strings[i])));
      if (b == nullptr) throw py::error_already_set();
      Py_XDECREF(objects[i]);
      objects[i] = b;
    }
    return out;
  }
  py::dtype dtype;
  if (!NumpyTypeOf(type, &dtype)) {
    throw StatusError(
        Unimplemented("Output dtype " + DataTypeName(type) + " has no numpy equivalent"));
  }
  if (count == 0) return py::array(dtype, shape);
  void* data = TF_TensorData(t.get());
  py::capsule owner(t.release(), [](void* p) { TF_DeleteTensor(static_cast<TF_Tensor*>(p)); });
  return py::array(dtype, shape, {}, data, owner);
}

LoadOptions MakeLoadOptions(const std::set<std::string>& tags, int intra_op_threads,
                            int inter_op_threads,
                            const std::vector<std::string>& custom_op_libraries, bool safe_mode) {
  LoadOptions options;
  options.safe_mode = safe_mode;
  options.tags = tags;
  options.intra_op_threads = intra_op_threads;
  options.inter_op_threads = inter_op_threads;
  options.custom_op_libraries = custom_op_libraries;
  return options;
}

// Loads from a path or a parsed spec with the GIL released (loading restores variables and may
// take seconds); raises the mapped exception on failure.
template <typename Source>
std::shared_ptr<LoadedModule> LoadWithoutGil(const Source& source, const LoadOptions& options) {
  std::unique_ptr<LoadedModule> module;
  RunWithoutGil([&] { return LoadedModule::Load(source, options, &module); });
  return std::shared_ptr<LoadedModule>(std::move(module));
}

}  // namespace

void RegisterRuntimeBindings(py::module_& m) {
  py::class_<LoadedModule, std::shared_ptr<LoadedModule>>(m, "LoadedModule")
      .def_static(
          "load",
          [](const std::string& path, const std::set<std::string>& tags, int intra_op_threads,
             int inter_op_threads, const std::vector<std::string>& custom_op_libraries,
             bool safe_mode) {
            return LoadWithoutGil(path, MakeLoadOptions(tags, intra_op_threads, inter_op_threads,
                                                        custom_op_libraries, safe_mode));
          },
          py::arg("path"), py::arg("tags") = std::set<std::string>{},
          py::arg("intra_op_threads") = 0, py::arg("inter_op_threads") = 0,
          py::arg("custom_op_libraries") = std::vector<std::string>{}, py::arg("safe_mode") = false,
          "Loads a module for serving: graph imported, variables restored, tables initialized.")
      .def_static(
          "load_spec",
          [](const ModuleSpec& spec, const std::set<std::string>& tags, int intra_op_threads,
             int inter_op_threads, const std::vector<std::string>& custom_op_libraries,
             bool safe_mode) {
            return LoadWithoutGil(spec, MakeLoadOptions(tags, intra_op_threads, inter_op_threads,
                                                        custom_op_libraries, safe_mode));
          },
          py::arg("spec"), py::arg("tags") = std::set<std::string>{},
          py::arg("intra_op_threads") = 0, py::arg("inter_op_threads") = 0,
          py::arg("custom_op_libraries") = std::vector<std::string>{}, py::arg("safe_mode") = false,
          "Like load, from an already parsed ModuleSpec.")
      .def_property_readonly("path", &LoadedModule::path)
      .def_property_readonly("tags", &LoadedModule::tags)
      .def_property_readonly("signatures", &LoadedModule::signatures,
                             py::return_value_policy::reference_internal)
      .def(
          "run",
          [](const LoadedModule& module, const std::string& signature, const py::dict& inputs,
             const std::vector<std::string>& output_keys) {
            const SignatureInfo* sig = module.FindSignature(signature);
            NamedValues feeds;
            for (const auto& [key_obj, components_obj] : inputs) {
              const std::string key = py::cast<std::string>(key_obj);
              const TensorInfo* info = sig ? sig->FindInput(key) : nullptr;
              std::vector<TensorPtr> components;
              py::sequence seq = py::reinterpret_borrow<py::sequence>(components_obj);
              const std::string where = "Input '" + key + "' of signature '" + signature + "'";
              for (size_t c = 0; c < seq.size(); ++c) {
                components.push_back(ToTensor(seq[c], where));
              }
              feeds.emplace(key, Value::FromComponents(info ? info->kind : TensorKind::kDense,
                                                       std::move(components)));
            }
            NamedValues results;
            RunWithoutGil([&] {
              Status status = module.Run(signature, feeds, output_keys, &results);
              feeds.clear();  // Free the input tensors before taking the GIL back.
              return status;
            });
            py::dict out;
            for (auto& [key, value] : results) {
              py::list arrays;
              for (auto& c : value.mutable_components()) arrays.append(ToNumpy(std::move(c)));
              out[py::str(key)] = arrays;
            }
            return out;
          },
          py::arg("signature"), py::arg("inputs"),
          py::arg("output_keys") = std::vector<std::string>{},
          "Runs a signature: inputs maps each input key to its component arrays (dense: [x]; "
          "sparse: [values, indices, dense_shape]; ragged: [flat_values, row_splits_0, ...]); "
          "returns the outputs the same way.");
}

}  // namespace hubcore::python
