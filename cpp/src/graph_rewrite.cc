// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
// (in progress)
