// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Direct tests of the module writer (hubcore/module_writer.h): an export of a fixture module
// reads back as the same module, assets are copied, and the atomic-directory steps refuse what
// they must.
#include "hubcore/module_writer.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "hubcore/module_spec.h"
#include "test_util.h"

using hubcore::ModuleSpec;
using hubcore::StatusCode;
using hubcore_test::DataDir;

namespace fs = std::filesystem;

namespace {

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A fresh empty directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() /
              (name + "-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
               "-" + std::to_string(reinterpret_cast<uintptr_t>(this)))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

TEST(ModuleWriterTest, ModuleDefAndAttachmentBytes) {
  EXPECT_EQ(hubcore::SerializeModuleDefBytes(3, {}), std::string("\x08\x03", 2));
  EXPECT_EQ(hubcore::SerializeModuleDefBytes(3, {"f"}), std::string("\x08\x03\x12\x01"
                                                                    "f",
                                                                    5));
  EXPECT_EQ(hubcore::SerializeAttachmentBytes("k", "v"), std::string("\x0a\x01k\x12\x01v", 6));
}

TEST(ModuleWriterTest, ExportOfAFixtureReadsBackAsTheSameModule) {
  std::unique_ptr<ModuleSpec> spec;
  ASSERT_OK(ModuleSpec::Load(DataDir() + "/text_table", &spec));
  TempDir tmp("hubcore_writer_test");
  const std::string target = (tmp.path() / "exported").string();
  std::string temp_dir;
  ASSERT_OK(hubcore::CreateExportTempDir(target, &temp_dir));
  EXPECT_EQ(fs::path(temp_dir).parent_path(), tmp.path());
  ASSERT_OK(hubcore::WriteModuleFiles(*spec, temp_dir));
  EXPECT_FALSE(fs::exists(target));  // nothing at the target before the commit
  // The checkpoint is the caller's part; copy the fixture's.
  for (const auto& entry : fs::directory_iterator(DataDir() + "/text_table/variables")) {
    fs::copy(entry.path(), fs::path(temp_dir) / "variables" / entry.path().filename());
  }
  ASSERT_OK(hubcore::CommitExportDir(temp_dir, target));
  EXPECT_FALSE(fs::exists(temp_dir));

  EXPECT_EQ(ReadFile(fs::path(target) / "tfhub_module.pb"), std::string("\x08\x03", 2));
  EXPECT_EQ(ReadFile(fs::path(target) / "assets" / "_vocab.txt"),
            ReadFile(DataDir() + "/text_table/assets/_vocab.txt"));
  std::unique_ptr<ModuleSpec> again;
  ASSERT_OK(ModuleSpec::Load(target, &again));
  ASSERT_EQ(again->variants().size(), spec->variants().size());
  const hubcore::GraphVariant* variant = again->FindVariant({});
  ASSERT_NE(variant, nullptr);
  ASSERT_EQ(variant->assets.size(), 1u);
  EXPECT_EQ(fs::path(variant->assets[0].path).parent_path(), fs::path(target) / "assets");
  EXPECT_EQ(variant->signatures.size(), spec->FindVariant({})->signatures.size());
  EXPECT_EQ(variant->variables.size(), spec->FindVariant({})->variables.size());
}

TEST(ModuleWriterTest, ExportDirectoriesRefuseWhatTheyMust) {
  TempDir tmp("hubcore_writer_refuse");
  const fs::path taken = tmp.path() / "taken";
  fs::create_directories(taken);
  std::ofstream(taken / "file") << "user data";
  std::string temp_dir;
  EXPECT_EQ(hubcore::CreateExportTempDir(taken.string(), &temp_dir).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadFile(taken / "file"), "user data");
  EXPECT_EQ(hubcore::CreateExportTempDir("", &temp_dir).code(), StatusCode::kInvalidArgument);

  // The target became non-empty between the two steps: the commit refuses, nothing is lost.
  const fs::path target = tmp.path() / "late";
  ASSERT_OK(hubcore::CreateExportTempDir(target.string(), &temp_dir));
  fs::create_directories(target);
  std::ofstream(target / "file") << "arrived meanwhile";
  EXPECT_EQ(hubcore::CommitExportDir(temp_dir, target.string()).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadFile(target / "file"), "arrived meanwhile");
  hubcore::RemoveExportDir(temp_dir);
  EXPECT_FALSE(fs::exists(temp_dir));
}

TEST(ModuleWriterTest, MissingAssetSourceIsNotFound) {
  TempDir tmp("hubcore_writer_asset");
  fs::copy(DataDir() + "/text_table", tmp.path() / "module", fs::copy_options::recursive);
  fs::permissions(tmp.path() / "module", fs::perms::owner_all, fs::perm_options::add);
  std::unique_ptr<ModuleSpec> spec;
  ASSERT_OK(ModuleSpec::Load((tmp.path() / "module").string(), &spec));
  fs::permissions(tmp.path() / "module" / "assets", fs::perms::owner_all, fs::perm_options::add);
  fs::remove(tmp.path() / "module" / "assets" / "_vocab.txt");
  const fs::path out = tmp.path() / "out";
  fs::create_directories(out);
  const hubcore::Status s = hubcore::WriteModuleFiles(*spec, out.string());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("_vocab.txt"), std::string::npos) << s.message();
}
