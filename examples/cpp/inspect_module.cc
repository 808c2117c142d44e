// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// inspect_module MODULE_DIR: prints what a TF1 Hub module offers, using libhubcore only.
#include <iostream>

#include "hubcore/module_spec.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " MODULE_DIR\n";
    return 2;
  }
  std::unique_ptr<hubcore::ModuleSpec> spec;
  const hubcore::Status status = hubcore::ModuleSpec::Load(argv[1], &spec);
  if (!status.ok()) {
    std::cerr << status.ToString() << "\n";
    return 1;
  }
  for (const hubcore::GraphVariant& variant : spec->variants()) {
    std::cout << "variant " << variant.TagsToString() << "\n";
    for (const hubcore::SignatureInfo& sig : variant.signatures) {
      std::cout << "  signature " << sig.name << "\n";
      for (const auto& in : sig.inputs)
        std::cout << "    in  " << in.key << " " << in.shape.ToString() << "\n";
      for (const auto& out : sig.outputs)
        std::cout << "    out " << out.key << " " << out.shape.ToString() << "\n";
    }
    for (const hubcore::VariableInfo& var : variant.variables) {
      std::cout << "  variable " << var.name << " (" << var.num_bytes() << " bytes)\n";
    }
  }
  return 0;
}
