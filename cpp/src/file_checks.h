// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Reading module files safely: only regular files (a FIFO, device or directory is refused before
// anything blocks on it), within size limits that the environment can adjust (docs/security.md).
#ifndef HUBCORE_SRC_FILE_CHECKS_H_
#define HUBCORE_SRC_FILE_CHECKS_H_

#include <cstdint>
#include <string>

#include "hubcore/status.h"

namespace hubcore::internal {

// The size limits, each read from its environment variable on every call (bytes; a positive
// integer, optionally with a K/M/G suffix), else the default.
uint64_t MaxProtoBytes();  // HUBCORE_MAX_PROTO_BYTES: saved_model.pb, tfhub_module.pb (2 GiB - 1).
uint64_t MaxAssetBytes();  // HUBCORE_MAX_ASSET_BYTES: each file under assets/ (1 GiB).

// kDataLoss naming `path` unless it is a regular file (symlinks followed) of at most `max_bytes`;
// kNotFound when it does not exist. Never opens the file. `*size` gets its size when non-null.
Status CheckRegularFile(const std::string& path, uint64_t max_bytes, uint64_t* size = nullptr);

// Reads a whole regular file of at most `max_bytes`. The file is opened non-blocking and checked
// with fstat before any read, so a FIFO swapped in after a check cannot hang the caller.
Status ReadRegularFile(const std::string& path, uint64_t max_bytes, std::string* contents);

}  // namespace hubcore::internal

#endif  // HUBCORE_SRC_FILE_CHECKS_H_
