// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// hubcore::Status: how every fallible call in the C++ API reports failure. The core never throws
// across its API and never aborts the process on bad data; callers check `ok()`.
#ifndef HUBCORE_STATUS_H_
#define HUBCORE_STATUS_H_

#include <string>
#include <utility>

#include "hubcore/export.h"

namespace hubcore {

// The error classes callers can branch on. The Python binding maps each to one exception type.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // The caller passed something wrong (unknown name, bad dtype, ...).
  kNotFound,            // A path does not exist (module, checkpoint, asset file).
  kVariantNotFound,     // The module has no graph variant with the given tags.
  kSignatureNotFound,   // The graph variant has no signature of the given name.
  kNotAModule,          // A directory exists but is not a TF1 Hub module.
  kDataLoss,            // A module file is corrupt or truncated.
  kUnimplemented,       // Unknown format version or required feature.
  kFailedPrecondition,  // The object is not in a state that allows the call.
  kAlreadyExists,       // An export target already exists.
  kInternal,            // TensorFlow reported an error while running.
  kPermissionDenied,    // Safe mode refuses the module (an op outside the allowlist).
};

// Returns a stable name for `code` ("INVALID_ARGUMENT", ...).
HUBCORE_API const char* StatusCodeName(StatusCode code);

// [[nodiscard]]: a Status that nobody checks is an error that nobody sees.
class [[nodiscard]] HUBCORE_API Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "CODE: message", or "OK".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Shorthands used throughout the core.
inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status VariantNotFound(std::string m) {
  return {StatusCode::kVariantNotFound, std::move(m)};
}
inline Status SignatureNotFound(std::string m) {
  return {StatusCode::kSignatureNotFound, std::move(m)};
}
inline Status NotAModule(std::string m) { return {StatusCode::kNotAModule, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status PermissionDenied(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}

}  // namespace hubcore

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define HUBCORE_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::hubcore::Status _hubcore_status = (expr);        \
    if (!_hubcore_status.ok()) return _hubcore_status; \
  } while (0)

#endif  // HUBCORE_STATUS_H_
