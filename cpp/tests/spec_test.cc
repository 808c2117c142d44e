// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// C++ tests of hubcore::ModuleSpec on the fixture modules, with no Python interpreter involved.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "hubcore/module_spec.h"
#include "hubcore/op_policy.h"
#include "tensorflow/c/tf_datatype.h"
#include "test_util.h"

using hubcore::ModuleSpec;
using hubcore::Status;
using hubcore::StatusCode;
using hubcore_test::DataDir;

namespace fs = std::filesystem;

TEST(ModuleSpecTest, TinyHasTwoVariantsAndThreeSignatures) {
  std::unique_ptr<ModuleSpec> spec;
  ASSERT_OK(ModuleSpec::Load(DataDir() + "/tiny", &spec));
  EXPECT_EQ(spec->format_version(), 3);
  EXPECT_EQ(spec->variants().size(), 2u);
  EXPECT_NE(spec->FindVariant({"train"}), nullptr);
  const hubcore::GraphVariant* dflt = spec->FindVariant({});
  ASSERT_NE(dflt, nullptr);
  EXPECT_EQ(dflt->signatures.size(), 3u);
  const hubcore::SignatureInfo* sig = dflt->FindSignature("default");
  ASSERT_NE(sig, nullptr);
  const hubcore::TensorInfo* x = sig->FindInput("x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->dtype, static_cast<int>(TF_FLOAT));
  EXPECT_EQ(x->shape.ToString(), std::string("(None, 4)"));
  EXPECT_TRUE(dflt->attached_messages.count("image_module_info") == 1);
  EXPECT_TRUE(!spec->checkpoint_prefix().empty());
}

TEST(ModuleSpecTest, PartitionedVariableIsGrouped) {
  std::unique_ptr<ModuleSpec> spec;
  ASSERT_OK(ModuleSpec::Load(DataDir() + "/partitioned", &spec));
  const hubcore::GraphVariant* variant = spec->FindVariant({});
  ASSERT_NE(variant, nullptr);
  const auto& vars = variant->variables;
  EXPECT_EQ(vars.size(), 2u);
  bool found = false;
  for (const auto& v : vars) {
    if (v.name == "table") {
      found = true;
      EXPECT_EQ(v.partitions.size(), 3u);
      EXPECT_EQ(v.partitions[0].node_name, std::string("table/part_0"));
    }
  }
  EXPECT_TRUE(found);
}

TEST(ModuleSpecTest, SparseAndRaggedInputsAreDecoded) {
  std::unique_ptr<ModuleSpec> spec;
  ASSERT_OK(ModuleSpec::Load(DataDir() + "/sparse_in", &spec));
  ASSERT_NE(spec->FindVariant({}), nullptr);
  ASSERT_NE(spec->FindVariant({})->FindSignature("default"), nullptr);
  const auto* sp = spec->FindVariant({})->FindSignature("default")->FindInput("sp");
  EXPECT_TRUE(sp && sp->kind == hubcore::TensorKind::kSparse && sp->tensor_names.size() == 3);
  ASSERT_OK(ModuleSpec::Load(DataDir() + "/ragged_in", &spec));
  ASSERT_NE(spec->FindVariant({}), nullptr);
  ASSERT_NE(spec->FindVariant({})->FindSignature("default"), nullptr);
  const auto* rt = spec->FindVariant({})->FindSignature("default")->FindInput("rt");
  EXPECT_TRUE(rt && rt->kind == hubcore::TensorKind::kRagged && rt->ragged_rank == 1);
}

TEST(ModuleSpecTest, AssetsResolveIntoTheModule) {
  std::unique_ptr<ModuleSpec> spec;
  ASSERT_OK(ModuleSpec::Load(DataDir() + "/text_table", &spec));
  ASSERT_NE(spec->FindVariant({}), nullptr);
  const auto& assets = spec->FindVariant({})->assets;
  ASSERT_EQ(assets.size(), 1u);
  EXPECT_TRUE(fs::exists(assets[0].path));
  EXPECT_EQ(fs::path(assets[0].path).parent_path(),
            fs::absolute(DataDir() + "/text_table/assets").lexically_normal());
}

TEST(ModuleSpecTest, BadInputsGiveStatusesNotCrashes) {
  std::unique_ptr<ModuleSpec> spec;
  EXPECT_EQ(ModuleSpec::Load(DataDir() + "/no/such/module", &spec).code(), StatusCode::kNotFound);
  const fs::path tmp = fs::temp_directory_path() / "hubcore_cc_test_bad";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fs::copy(DataDir() + "/tiny", tmp, fs::copy_options::recursive);
  fs::permissions(tmp, fs::perms::owner_all, fs::perm_options::add);
  // Truncate saved_model.pb in the middle.
  const fs::path pb = tmp / "saved_model.pb";
  fs::permissions(pb, fs::perms::owner_write, fs::perm_options::add);
  fs::resize_file(pb, fs::file_size(pb) / 2);
  EXPECT_EQ(ModuleSpec::Load(tmp.string(), &spec).code(), StatusCode::kDataLoss);
  // Unknown format version.
  const fs::path marker = tmp / "tfhub_module.pb";
  fs::permissions(marker, fs::perms::owner_write, fs::perm_options::add);
  {
    std::ofstream(marker, std::ios::binary | std::ios::trunc) << std::string("\x08\x04", 2);
  }
  EXPECT_EQ(ModuleSpec::Load(tmp.string(), &spec).code(), StatusCode::kUnimplemented);
  fs::remove(marker);
  EXPECT_EQ(ModuleSpec::Load(tmp.string(), &spec).code(), StatusCode::kNotAModule);
  fs::remove_all(tmp);
}

TEST(SafeModeTest, FixturesUseOnlyAllowlistedOps) {
  for (const char* name : {"tiny", "text_table", "sparse_in", "ragged_in", "partitioned"}) {
    std::unique_ptr<ModuleSpec> spec;
    ASSERT_OK(ModuleSpec::Load(DataDir() + "/" + name, &spec));
    EXPECT_OK(hubcore::CheckSafeMode(*spec, {}));
  }
  std::unique_ptr<ModuleSpec> spec;
  ASSERT_OK(ModuleSpec::Load(DataDir() + "/text_table", &spec));
  std::vector<hubcore::OpTypeUse> uses;
  ASSERT_OK(hubcore::ListOpTypes(*spec, {}, &uses));
  bool reads_asset = false;
  for (const auto& use : uses) {
    reads_asset = reads_asset || use.effect == hubcore::OpEffect::kAssetRead;
  }
  EXPECT_TRUE(reads_asset);
  EXPECT_EQ(hubcore::ClassifyOp("WriteFile"), hubcore::OpEffect::kFile);
  EXPECT_EQ(hubcore::ClassifyOp("PyFunc"), hubcore::OpEffect::kProcess);
  EXPECT_EQ(hubcore::ClassifyOp("MatMul"), hubcore::OpEffect::kCompute);
}

TEST(ModuleSpecTest, FifoInPlaceOfAModuleFileIsRefusedWithoutBlocking) {
  const fs::path dir = fs::temp_directory_path() / ("hubcore_fifo_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::copy(DataDir() + "/tiny", dir, fs::copy_options::recursive);
  fs::remove(dir / "saved_model.pb");
  ASSERT_EQ(::mkfifo((dir / "saved_model.pb").c_str(), 0600), 0);
  std::unique_ptr<ModuleSpec> spec;
  const Status status = ModuleSpec::Load(dir.string(), &spec);
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("is a FIFO"), std::string::npos) << status.message();
  fs::remove_all(dir);
}
