// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
#include "file_checks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace hubcore::internal {
namespace {

uint64_t LimitFromEnv(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || value == 0 || text[0] == '-') return fallback;
  uint64_t scale = 1;
  switch (*end) {
    case '\0':
      break;
    case 'K':
    case 'k':
      scale = 1ULL << 10;
      break;
    case 'M':
    case 'm':
      scale = 1ULL << 20;
      break;
    case 'G':
    case 'g':
      scale = 1ULL << 30;
      break;
    default:
      return fallback;
  }
  if (*end != '\0' && end[1] != '\0') return fallback;
  if (value > UINT64_MAX / scale) return UINT64_MAX;
  return value * scale;
}

std::string KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

Status CheckStat(const std::string& path, const struct stat& st, uint64_t max_bytes,
                 uint64_t* size) {
  if (!S_ISREG(st.st_mode)) {
    return DataLoss("Module file " + path + " is " + KindOf(st.st_mode) +
                    "; module files must be regular files");
  }
  const auto bytes = static_cast<uint64_t>(st.st_size);
  if (bytes > max_bytes) {
    return DataLoss("Module file " + path + " has " + std::to_string(bytes) +
                    " bytes, more than the limit of " + std::to_string(max_bytes) +
                    " (see docs/security.md to raise it)");
  }
  if (size != nullptr) *size = bytes;
  return Status::OK();
}

Status FromErrno(const std::string& path, int error) {
  if (error == ENOENT || error == ENOTDIR) return NotFound("Module file " + path + " is missing");
  return DataLoss("Cannot read module file " + path + ": " + std::strerror(error));
}

}  // namespace

uint64_t MaxProtoBytes() { return LimitFromEnv("HUBCORE_MAX_PROTO_BYTES", (1ULL << 31) - 1); }
uint64_t MaxAssetBytes() { return LimitFromEnv("HUBCORE_MAX_ASSET_BYTES", 1ULL << 30); }

Status CheckRegularFile(const std::string& path, uint64_t max_bytes, uint64_t* size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FromErrno(path, errno);
  return CheckStat(path, st, max_bytes, size);
}

Status ReadRegularFile(const std::string& path, uint64_t max_bytes, std::string* contents) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return FromErrno(path, errno);
  struct stat st;
  Status status =
      ::fstat(fd, &st) == 0 ? CheckStat(path, st, max_bytes, nullptr) : FromErrno(path, errno);
  if (status.ok()) {
    contents->assign(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < contents->size()) {
      const ssize_t n = ::read(fd, contents->data() + done, contents->size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = FromErrno(path, errno);
        break;
      }
      if (n == 0) break;  // Shrunk while reading: parse what is there.
      done += static_cast<size_t>(n);
    }
    contents->resize(done);
  }
  ::close(fd);
  return status;
}

}  // namespace hubcore::internal
