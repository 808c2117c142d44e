// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Symbol visibility: libhubcore is built with hidden visibility; only HUBCORE_API names are
// exported. (Standard attribute syntax, so that it combines with [[nodiscard]].)
#ifndef HUBCORE_EXPORT_H_
#define HUBCORE_EXPORT_H_

#if defined(HUBCORE_BUILDING_LIBRARY)
#define HUBCORE_API [[gnu::visibility("default")]]
#else
#define HUBCORE_API
#endif

#endif  // HUBCORE_EXPORT_H_
