// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Writing TF1 Hub modules in the layout tensorflow_hub 0.15 wrote (see docs/format.md).
#include "hubcore/module_writer.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <system_error>
#include <unordered_map>
#include <unordered_set>

#include "hubcore/module_spec.h"
#include "module_format.h"
#include "module_spec_data.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "tensorflow/core/protobuf/saved_model.pb.h"

namespace fs = std::filesystem;

namespace hubcore {
namespace {

// The value tensorflow_hub writes into asset Consts so that no original path leaks.
constexpr char kAssetPlaceholder[] = "SAVEDMODEL-ASSET";

// Source path -> destination basename, shared by all variants of one export.
class AssetNamer {
 public:
  const std::string& NameFor(const std::string& source) {
    auto it = names_.find(source);
    if (it != names_.end()) return it->second;
    const std::string basename = fs::path(source).filename().string();
    std::string name = basename;
    for (int k = 0; used_.count(name); ++k) name = basename + std::to_string(k);
    used_.insert(name);
    order_.push_back(source);
    return names_[source] = name;
  }
  std::vector<AssetCopy> Copies() const {
    std::vector<AssetCopy> copies;
    for (const auto& source : order_) copies.push_back({source, names_.at(source)});
    return copies;
  }

 private:
  std::unordered_map<std::string, std::string> names_;
  std::unordered_set<std::string> used_;
  std::vector<std::string> order_;
};

Status RewriteAssets(tensorflow::MetaGraphDef* meta_graph, const std::string& where,
                     AssetNamer* namer) {
  auto* collections = meta_graph->mutable_collection_def();
  collections->erase(internal::kAssetsCollection);
  auto it = collections->find("asset_filepaths");
  if (it == collections->end()) return Status::OK();
  if (!it->second.has_node_list()) {
    return InvalidArgument(where +
                           ": MetaGraph collection ASSET_FILEPATHS is not a list of "
                           "tensors.");
  }
  std::set<std::string> asset_nodes;
  for (const auto& tensor : it->second.node_list().value()) {
    if (tensor.size() < 2 || tensor.compare(tensor.size() - 2, 2, ":0") != 0) {
      return InvalidArgument(where + ": Unexpected tensor in ASSET_FILEPATHS collection: '" +
                             tensor + "' (expected a name ending in ':0').");
    }
    asset_nodes.insert(tensor.substr(0, tensor.size() - 2));
  }
  // Sorted by tensor name, as tensorflow_hub orders the AssetFileDefs (and assigns names).
  std::map<std::string, std::string> tensor_to_source;
  for (auto& node : *meta_graph->mutable_graph_def()->mutable_node()) {
    if (!asset_nodes.count(node.name())) continue;
    auto attr = node.mutable_attr()->find("value");
    if (node.op() != "Const" || attr == node.mutable_attr()->end() ||
        attr->second.tensor().dtype() != tensorflow::DT_STRING ||
        attr->second.tensor().string_val_size() != 1) {
      return InvalidArgument(where + ": asset node '" + node.name() +
                             "' must be a string Const with exactly one value (op " + node.op() +
                             ").");
    }
    auto* tensor = attr->second.mutable_tensor();
    tensor_to_source[node.name() + ":0"] = tensor->string_val(0);
    tensor->set_string_val(0, kAssetPlaceholder);
  }
  if (tensor_to_source.empty()) return Status::OK();
  auto* any_list = (*collections)[internal::kAssetsCollection].mutable_any_list();
  for (const auto& [tensor_name, source] : tensor_to_source) {
    if (source.empty()) {
      return InvalidArgument(where + ": asset node '" + tensor_name + "' holds an empty path.");
    }
    tensorflow::AssetFileDef asset;
    asset.set_filename(namer->NameFor(source));
    asset.mutable_tensor_info()->set_name(tensor_name);
    any_list->add_value()->PackFrom(asset);
  }
  return Status::OK();
}

Status WriteFile(const fs::path& file, const std::string& contents) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) return Internal("Cannot create file " + file.string());
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) return Internal("Cannot write file " + file.string());
  return Status::OK();
}

std::string RandomHex() {
  std::random_device device;
  std::mt19937_64 gen((static_cast<uint64_t>(device()) << 32) ^ device());
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(gen()),
                static_cast<unsigned long long>(gen()));
  return buf;
}

// "<host>.<pid>" of this process: temporary export directories carry it so that a later export
// can tell whether their owner is still running.
std::string OwnerTag() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host) + "." + std::to_string(getpid());
}

// True if `owner` ("<host>.<pid>") names a process of this host that no longer exists.
bool OwnerIsGone(const std::string& owner) {
  const size_t dot = owner.rfind('.');
  if (dot == std::string::npos || dot + 1 == owner.size()) return false;
  const std::string mine = OwnerTag();
  if (owner.substr(0, dot) != mine.substr(0, mine.rfind('.'))) return false;  // another host
  long pid = 0;
  for (size_t i = dot + 1; i < owner.size(); ++i) {
    if (owner[i] < '0' || owner[i] > '9' || pid > 1'000'000'000) return false;
    pid = pid * 10 + (owner[i] - '0');
  }
  // EPERM: the process exists (run by another user); only ESRCH proves it is gone.
  return pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// Removes the "<target>.tmp-<host>.<pid>-<hex>" directories beside `target` whose owner process
// is gone (killed mid-export). Directories of live processes, of other hosts and anything that is
// not a plain directory stay.
void RemoveStaleTempDirs(const fs::path& target) {
  const std::string prefix = target.filename().string() + ".tmp-";
  std::error_code ec;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(target.parent_path(), ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const size_t dash = name.rfind('-');
    if (dash == std::string::npos || dash < prefix.size()) continue;
    if (!OwnerIsGone(name.substr(prefix.size(), dash - prefix.size()))) continue;
    std::error_code type_ec;
    if (it->symlink_status(type_ec).type() == fs::file_type::directory) stale.push_back(it->path());
  }
  for (const auto& dir : stale) fs::remove_all(dir, ec);
}

// True if `path` does not exist or is an empty directory.
// A new path or an empty directory (not a link to one: rename() cannot replace a link with a
// directory, and the link is the user's).
bool IsFreeTarget(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(path, ec);
  if (!fs::exists(status)) return true;
  return fs::is_directory(status) && fs::is_empty(path, ec) && !ec;
}

}  // namespace

std::string SerializeModuleDefBytes(int format, const std::vector<std::string>& required_features) {
  internal::ModuleDef def;
  def.format = format;
  def.required_features = required_features;
  return internal::SerializeModuleDef(def);
}

std::string SerializeAttachmentBytes(const std::string& key, const std::string& value) {
  return internal::SerializeModuleAttachment(key, value);
}

Status BuildExportSavedModel(const ModuleSpec& spec, std::string* saved_model_bytes,
                             std::vector<AssetCopy>* assets) {
  tensorflow::SavedModel saved_model = spec.data().saved_model;
  AssetNamer namer;
  for (int i = 0; i < saved_model.meta_graphs_size(); ++i) {
    const std::string where = "graph variant " + (i < static_cast<int>(spec.variants().size())
                                                      ? spec.variants()[i].TagsToString()
                                                      : std::to_string(i));
    HUBCORE_RETURN_IF_ERROR(RewriteAssets(saved_model.mutable_meta_graphs(i), where, &namer));
  }
  if (!saved_model.SerializeToString(saved_model_bytes)) {
    return InvalidArgument("The module's SavedModel cannot be serialized (larger than 2 GB?)");
  }
  *assets = namer.Copies();
  return Status::OK();
}

Status WriteModuleFiles(const ModuleSpec& spec, const std::string& dir) {
  std::string saved_model_bytes;
  std::vector<AssetCopy> assets;
  HUBCORE_RETURN_IF_ERROR(BuildExportSavedModel(spec, &saved_model_bytes, &assets));
  const fs::path root(dir);
  std::error_code ec;
  const fs::path assets_dir = root / internal::kAssetsDir;
  const fs::path variables_dir = root / internal::kVariablesDir;
  for (const fs::path& sub : {assets_dir, variables_dir}) {
    fs::create_directories(sub, ec);
    if (ec) return Internal("Cannot create directory " + sub.string() + ": " + ec.message());
  }
  for (const auto& asset : assets) {
    if (!fs::is_regular_file(asset.source, ec)) {
      return NotFound("Asset file '" + asset.source +
                      "' does not exist (it must exist when the module is exported)");
    }
    const fs::path target = assets_dir / asset.filename;
    fs::copy_file(asset.source, target, fs::copy_options::none, ec);
    if (ec) {
      return Internal("Cannot copy asset '" + asset.source + "' to " + target.string() + ": " +
                      ec.message());
    }
  }
  HUBCORE_RETURN_IF_ERROR(WriteFile(root / internal::kSavedModelFile, saved_model_bytes));
  HUBCORE_RETURN_IF_ERROR(WriteFile(root / internal::kModuleDefFile,
                                    SerializeModuleDefBytes(internal::kModuleDefFormatV3, {})));
  return Status::OK();
}

Status CreateExportTempDir(const std::string& path, std::string* temp_dir) {
  if (path.empty()) return InvalidArgument("The export path is empty");
  std::error_code ec;
  const fs::path target = fs::absolute(path, ec).lexically_normal();
  if (ec) return InvalidArgument("Bad export path '" + path + "': " + ec.message());
  fs::path clean = target;
  if (!clean.has_filename()) clean = clean.parent_path();  // "/a/b/" -> "/a/b"
  if (fs::is_symlink(fs::symlink_status(clean, ec))) {
    return Status(StatusCode::kAlreadyExists,
                  "Export path '" + path +
                      "' is a symbolic link; hubcore never replaces one (export to a new path "
                      "or to the empty directory it points to)");
  }
  if (!IsFreeTarget(clean)) {
    return Status(StatusCode::kAlreadyExists,
                  "Export path '" + path +
                      "' already exists and is not an empty directory; hubcore never writes "
                      "into an existing module (remove it first or choose another path)");
  }
  fs::create_directories(clean.parent_path(), ec);
  if (ec) {
    return Internal("Cannot create directory " + clean.parent_path().string() + ": " +
                    ec.message());
  }
  RemoveStaleTempDirs(clean);
  const std::string owner = OwnerTag();
  for (int attempt = 0; attempt < 8; ++attempt) {
    const fs::path tmp = clean.string() + ".tmp-" + owner + "-" + RandomHex().substr(0, 16);
    if (fs::create_directory(tmp, ec)) {
      *temp_dir = tmp.string();
      return Status::OK();
    }
    if (ec) return Internal("Cannot create directory " + tmp.string() + ": " + ec.message());
  }
  return Internal("Cannot create a temporary directory next to " + clean.string());
}

Status CommitExportDir(const std::string& temp_dir, const std::string& path) {
  std::error_code ec;
  fs::path target = fs::absolute(path, ec).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  if (!IsFreeTarget(target)) {
    return Status(StatusCode::kAlreadyExists,
                  "Export path '" + path + "' was created by someone else during the export");
  }
  fs::rename(temp_dir, target, ec);
  if (ec) {
    if (ec == std::errc::directory_not_empty || ec == std::errc::file_exists ||
        ec == std::errc::not_a_directory) {
      return Status(StatusCode::kAlreadyExists,
                    "Export path '" + path + "' was created by someone else during the export");
    }
    return Internal("Cannot rename " + temp_dir + " to " + target.string() + ": " + ec.message());
  }
  return Status::OK();
}

void RemoveExportDir(const std::string& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace hubcore
