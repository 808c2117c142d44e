// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Writing TF1 Hub modules: the format marker, attachments, and the SavedModel with its assets.
//
// An export is atomic: it writes into a temporary directory next to the target and renames it into
// place at the end, so the target is either absent or a complete module.
//
//   std::string tmp;
//   HUBCORE_RETURN_IF_ERROR(hubcore::CreateExportTempDir("/models/m", &tmp));
//   hubcore::Status s = hubcore::WriteModuleFiles(spec, tmp);
//   // ... write the checkpoint to tmp + "/variables/variables" ...
//   if (s.ok()) s = hubcore::CommitExportDir(tmp, "/models/m");
//   if (!s.ok()) hubcore::RemoveExportDir(tmp);
#ifndef HUBCORE_MODULE_WRITER_H_
#define HUBCORE_MODULE_WRITER_H_

#include <string>
#include <vector>

#include "hubcore/export.h"
#include "hubcore/status.h"

namespace hubcore {

class ModuleSpec;

// Serialized tensorflow_hub.ModuleDef (bytes 08 03 for format 3 and no features).
HUBCORE_API std::string SerializeModuleDefBytes(int format,
                                                const std::vector<std::string>& required_features);
// Serialized tensorflow_hub.ModuleAttachment.
HUBCORE_API std::string SerializeAttachmentBytes(const std::string& key, const std::string& value);

// One asset file of an export: copied from `source` to `<module>/assets/<filename>`.
struct AssetCopy {
  std::string source;
  std::string filename;
};

// The `saved_model.pb` of an export of `spec`, as tensorflow_hub 0.15 wrote it: in every graph
// variant, each asset Const listed in `asset_filepaths` gets the value "SAVEDMODEL-ASSET" and a
// `saved_model_assets` AssetFileDef (sorted by tensor name). Destination names are shared by all
// variants: one source path gets one name; a basename already taken by another source gets
// `basename + k` (k = 0, 1, ...). kInvalidArgument for a malformed `asset_filepaths` or asset node.
HUBCORE_API Status BuildExportSavedModel(const ModuleSpec& spec, std::string* saved_model_bytes,
                                         std::vector<AssetCopy>* assets);

// Writes everything of a module except its checkpoint into the existing directory `dir`:
// `assets/` (copied files), an empty `variables/`, `saved_model.pb` and `tfhub_module.pb`.
// kNotFound if an asset source is missing.
HUBCORE_API Status WriteModuleFiles(const ModuleSpec& spec, const std::string& dir);

// Checks that `path` can receive an export (absent, or an empty directory; else kAlreadyExists),
// creates its parent directories and a new empty directory `<path>.tmp-<host>.<pid>-<random hex>`
// next to it. Such directories left beside `path` by processes of this host that are gone (killed
// mid-export) are removed first.
HUBCORE_API Status CreateExportTempDir(const std::string& path, std::string* temp_dir);

// Renames `temp_dir` to `path` (replacing an empty directory there). kAlreadyExists if `path` has
// become non-empty meanwhile; `temp_dir` is left in place on failure.
HUBCORE_API Status CommitExportDir(const std::string& temp_dir, const std::string& path);

// Removes `dir` and everything in it, ignoring errors (cleanup after a failed export).
HUBCORE_API void RemoveExportDir(const std::string& dir);

}  // namespace hubcore

#endif  // HUBCORE_MODULE_WRITER_H_
