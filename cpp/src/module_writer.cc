// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
#include "hubcore/module_writer.h"

#include "module_format.h"

namespace hubcore {

std::string SerializeModuleDefBytes(int format, const std::vector<std::string>& required_features) {
  internal::ModuleDef def;
  def.format = format;
  def.required_features = required_features;
  return internal::SerializeModuleDef(def);
}

std::string SerializeAttachmentBytes(const std::string& key, const std::string& value) {
  return internal::SerializeModuleAttachment(key, value);
}

}  // namespace hubcore
