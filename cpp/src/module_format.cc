// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
#include "module_format.h"

#include <cstdint>

namespace hubcore::internal {
namespace {

// Proto wire types used by the two messages.
constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

class WireReader {
 public:
  explicit WireReader(const std::string& bytes) : p_(bytes.data()), end_(p_ + bytes.size()) {}
  bool done() const { return p_ == end_; }

  bool ReadVarint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const uint8_t byte = static_cast<uint8_t>(*p_++);
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }
  bool ReadBytes(std::string* out) {
    uint64_t size;
    if (!ReadVarint(&size) || size > static_cast<uint64_t>(end_ - p_)) return false;
    out->assign(p_, static_cast<size_t>(size));
    p_ += size;
    return true;
  }
  bool Skip(int wire_type) {
    uint64_t ignored;
    std::string ignored_bytes;
    switch (wire_type) {
      case kVarint:
        return ReadVarint(&ignored);
      case kLengthDelimited:
        return ReadBytes(&ignored_bytes);
      case kFixed64:
        return Advance(8);
      case kFixed32:
        return Advance(4);
      default:
        return false;  // Groups are not used by these messages.
    }
  }

 private:
  bool Advance(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    p_ += n;
    return true;
  }
  const char* p_;
  const char* end_;
};

void WriteVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void WriteBytesField(int field, const std::string& value, std::string* out) {
  WriteVarint((static_cast<uint64_t>(field) << 3) | kLengthDelimited, out);
  WriteVarint(value.size(), out);
  out->append(value);
}

}  // namespace

Status ParseModuleDef(const std::string& bytes, const std::string& file, ModuleDef* out) {
  WireReader reader(bytes);
  ModuleDef def;
  while (!reader.done()) {
    uint64_t tag;
    if (!reader.ReadVarint(&tag)) return DataLoss("Cannot parse file " + file + ": bad tag");
    const int field = static_cast<int>(tag >> 3);
    const int wire_type = static_cast<int>(tag & 7);
    bool ok;
    if (field == 1 && wire_type == kVarint) {
      uint64_t value;
      ok = reader.ReadVarint(&value);
      def.format = static_cast<int>(value);
    } else if (field == 2 && wire_type == kLengthDelimited) {
      std::string feature;
      ok = reader.ReadBytes(&feature);
      def.required_features.push_back(feature);
    } else {
      ok = field > 0 && reader.Skip(wire_type);
    }
    if (!ok) return DataLoss("Cannot parse file " + file + ": truncated or malformed ModuleDef");
  }
  *out = std::move(def);
  return Status::OK();
}

Status ValidateModuleDef(const ModuleDef& def, const std::string& file) {
  if (def.format != kModuleDefFormatV3) {
    return Unimplemented("Unsupported module def format: " + std::to_string(def.format) + " in " +
                         file + " (this hubcore reads format " +
                         std::to_string(kModuleDefFormatV3) + ")");
  }
  if (!def.required_features.empty()) {
    // No optional features are defined for FORMAT_V3, so every required feature is unknown.
    std::string names;
    for (const auto& f : def.required_features) names += (names.empty() ? "'" : ", '") + f + "'";
    return Unimplemented("Unsupported features: [" + names + "] required by " + file);
  }
  return Status::OK();
}

std::string SerializeModuleDef(const ModuleDef& def) {
  std::string out;
  if (def.format != 0) {
    WriteVarint((1 << 3) | kVarint, &out);
    WriteVarint(static_cast<uint64_t>(def.format), &out);
  }
  for (const auto& f : def.required_features) WriteBytesField(2, f, &out);
  return out;
}

Status ParseModuleAttachment(const std::string& bytes, std::string* key, std::string* value) {
  WireReader reader(bytes);
  key->clear();
  value->clear();
  while (!reader.done()) {
    uint64_t tag;
    if (!reader.ReadVarint(&tag)) return DataLoss("malformed ModuleAttachment");
    const int field = static_cast<int>(tag >> 3);
    const int wire_type = static_cast<int>(tag & 7);
    bool ok;
    if (field == 1 && wire_type == kLengthDelimited) {
      ok = reader.ReadBytes(key);
    } else if (field == 2 && wire_type == kLengthDelimited) {
      ok = reader.ReadBytes(value);
    } else {
      ok = field > 0 && reader.Skip(wire_type);
    }
    if (!ok) return DataLoss("malformed ModuleAttachment");
  }
  return Status::OK();
}

std::string SerializeModuleAttachment(const std::string& key, const std::string& value) {
  std::string out;  // proto3: empty fields are omitted, as tensorflow_hub's writer does.
  if (!key.empty()) WriteBytesField(1, key, &out);
  if (!value.empty()) WriteBytesField(2, value, &out);
  return out;
}

}  // namespace hubcore::internal
