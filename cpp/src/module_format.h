// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// The two tiny protos of the TF1 Hub format that TensorFlow does not ship:
//   tensorflow_hub.ModuleDef        { Format format = 1; repeated string required_features = 2; }
//   tensorflow_hub.ModuleAttachment { string key = 1; bytes value = 2; }
// They are read and written here with a minimal wire-format codec, so the core needs no protoc
// step.
#ifndef HUBCORE_SRC_MODULE_FORMAT_H_
#define HUBCORE_SRC_MODULE_FORMAT_H_

#include <string>
#include <vector>

#include "hubcore/status.h"

namespace hubcore::internal {

inline constexpr int kModuleDefFormatV3 = 3;
inline constexpr char kModuleDefFile[] = "tfhub_module.pb";
inline constexpr char kSavedModelFile[] = "saved_model.pb";
inline constexpr char kVariablesDir[] = "variables";
inline constexpr char kVariablesPrefix[] = "variables/variables";
inline constexpr char kAssetsDir[] = "assets";
inline constexpr char kAttachmentsCollection[] = "hub_module_attachments";
inline constexpr char kAssetsCollection[] = "saved_model_assets";

struct ModuleDef {
  int format = 0;
  std::vector<std::string> required_features;
};

// Parses ModuleDef bytes; `file` names the source in error messages. kDataLoss on malformed bytes.
Status ParseModuleDef(const std::string& bytes, const std::string& file, ModuleDef* out);
// Checks the format version and required features the way every reader must (unknown → reject).
Status ValidateModuleDef(const ModuleDef& def, const std::string& file);
std::string SerializeModuleDef(const ModuleDef& def);

Status ParseModuleAttachment(const std::string& bytes, std::string* key, std::string* value);
std::string SerializeModuleAttachment(const std::string& key, const std::string& value);

}  // namespace hubcore::internal

#endif  // HUBCORE_SRC_MODULE_FORMAT_H_
