// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Writing TF1 Hub modules: the format marker, attachments, and the SavedModel with its assets.
#ifndef HUBCORE_MODULE_WRITER_H_
#define HUBCORE_MODULE_WRITER_H_

#include <string>
#include <vector>

#include "hubcore/export.h"
#include "hubcore/status.h"

namespace hubcore {

// Serialized tensorflow_hub.ModuleDef (bytes 08 03 for format 3 and no features).
HUBCORE_API std::string SerializeModuleDefBytes(int format,
                                                const std::vector<std::string>& required_features);
// Serialized tensorflow_hub.ModuleAttachment.
HUBCORE_API std::string SerializeAttachmentBytes(const std::string& key, const std::string& value);

}  // namespace hubcore

#endif  // HUBCORE_MODULE_WRITER_H_
