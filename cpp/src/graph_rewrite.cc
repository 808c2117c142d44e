// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// GraphRewriter (see hubcore/graph_rewrite.h) in three parts: variant analysis
// (variant_index.{h,cc}), the state graph (state_graph.cc) and the apply graph (apply_graph.cc).
// This file holds what they share: the rewriter's caches.
#include "hubcore/graph_rewrite.h"

#include "graph_rewrite_impl.h"

namespace hubcore {

GraphRewriter::GraphRewriter(std::shared_ptr<const ModuleSpec> spec)
    : spec_(std::move(spec)), impl_(std::make_unique<Impl>()) {}
GraphRewriter::~GraphRewriter() = default;

Status GraphRewriter::Impl::GetIndex(const ModuleSpec& spec, const std::set<std::string>& tags,
                                     const internal::VariantIndex** out) {
  const auto& data = spec.data();
  int i = -1;
  HUBCORE_RETURN_IF_ERROR(internal::FindVariant(data, tags, &i));
  auto& slot = indexes[i];
  if (!slot) {
    auto index = std::make_unique<internal::VariantIndex>();
    HUBCORE_RETURN_IF_ERROR(
        internal::BuildIndex(data.saved_model.meta_graphs(i), data.variants[i], index.get()));
    slot = std::move(index);
  }
  HUBCORE_RETURN_IF_ERROR(slot->error);
  *out = slot.get();
  return Status::OK();
}

}  // namespace hubcore
