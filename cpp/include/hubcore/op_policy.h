// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Safe mode: a module is a program, and its graph can read and write files, talk to the network or
// run Python when a signature runs. These functions classify a graph variant's op types and refuse
// a variant that uses any op outside an allowlist of pure compute ops (plus table initialization
// from the module's own asset files). See docs/security.md.
//
//   hubcore::Status s = hubcore::CheckSafeMode(*spec, /*tags=*/{});
#ifndef HUBCORE_OP_POLICY_H_
#define HUBCORE_OP_POLICY_H_

#include <set>
#include <string>
#include <vector>

#include "hubcore/export.h"
#include "hubcore/module_spec.h"
#include "hubcore/status.h"

namespace hubcore {

// What running an op can touch besides the session's memory.
enum class OpEffect {
  kCompute,    // Pure computation (in the safe-mode allowlist).
  kAssetRead,  // Table initialization from a text file (allowed on the module's own assets).
  kFile,       // Reads or writes files (or stderr).
  kNetwork,    // Sends or receives over the network.
  kProcess,    // Runs code in another runtime (Python).
  kUnknown,    // Not in the allowlist and not known to be harmful either.
};

HUBCORE_API const char* OpEffectName(OpEffect effect);  // "compute", "files", ...
HUBCORE_API OpEffect ClassifyOp(const std::string& op_type);
// The op types safe mode allows, sorted.
HUBCORE_API std::vector<std::string> SafeModeAllowlist();

struct OpTypeUse {
  std::string op;
  OpEffect effect = OpEffect::kUnknown;
  int count = 0;           // Nodes using it, in the graph and its function library.
  std::string first_node;  // "node", or "function/node" inside a library function.
};

// Every op type the variant with `tags` uses (graph and function library), sorted by op type.
HUBCORE_API Status ListOpTypes(const ModuleSpec& spec, const std::set<std::string>& tags,
                               std::vector<OpTypeUse>* uses);

// OK when the variant uses only allowlisted ops; otherwise kPermissionDenied naming the first
// offending node and its op type. kVariantNotFound when there is no variant with `tags`.
HUBCORE_API Status CheckSafeMode(const ModuleSpec& spec, const std::set<std::string>& tags);

}  // namespace hubcore

#endif  // HUBCORE_OP_POLICY_H_
