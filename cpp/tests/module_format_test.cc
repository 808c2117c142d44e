// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Direct tests of the tfhub_module.pb / ModuleAttachment codec (cpp/src/module_format.h).
#include "module_format.h"

#include <string>

#include "test_util.h"

using hubcore::StatusCode;
using hubcore::internal::ModuleDef;

TEST(ModuleFormatTest, ModuleDefRoundTrips) {
  ModuleDef def;
  def.format = 3;
  def.required_features = {"a", "bb"};
  const std::string bytes = hubcore::internal::SerializeModuleDef(def);
  EXPECT_EQ(bytes, std::string("\x08\x03\x12\x01"
                               "a\x12\x02"
                               "bb",
                               9));
  ModuleDef parsed;
  ASSERT_OK(hubcore::internal::ParseModuleDef(bytes, "m/tfhub_module.pb", &parsed));
  EXPECT_EQ(parsed.format, 3);
  EXPECT_EQ(parsed.required_features, def.required_features);
}

TEST(ModuleFormatTest, ModuleDefAsTensorflowHubWroteIt) {
  ModuleDef parsed;
  ASSERT_OK(hubcore::internal::ParseModuleDef(std::string("\x08\x03", 2), "f", &parsed));
  EXPECT_EQ(parsed.format, 3);
  EXPECT_TRUE(parsed.required_features.empty());
  EXPECT_OK(hubcore::internal::ValidateModuleDef(parsed, "f"));
}

TEST(ModuleFormatTest, MalformedOrUnsupportedModuleDefs) {
  ModuleDef parsed;
  const hubcore::Status truncated =
      hubcore::internal::ParseModuleDef(std::string("\x08", 1), "m/tfhub_module.pb", &parsed);
  EXPECT_EQ(truncated.code(), StatusCode::kDataLoss);
  EXPECT_NE(truncated.message().find("m/tfhub_module.pb"), std::string::npos);
  EXPECT_EQ(hubcore::internal::ParseModuleDef(std::string("\x12\x05"
                                                          "ab",
                                                          4),
                                              "f", &parsed)
                .code(),
            StatusCode::kDataLoss);  // a length past the end

  ModuleDef future;
  future.format = 4;
  EXPECT_EQ(hubcore::internal::ValidateModuleDef(future, "f").code(), StatusCode::kUnimplemented);
  ModuleDef feature;
  feature.format = 3;
  feature.required_features = {"future_thing"};
  const hubcore::Status s = hubcore::internal::ValidateModuleDef(feature, "f");
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("future_thing"), std::string::npos) << s.message();
}

TEST(ModuleFormatTest, AttachmentRoundTrips) {
  const std::string value("\x00\xff binary", 9);
  const std::string bytes = hubcore::internal::SerializeModuleAttachment("key", value);
  std::string key, parsed;
  ASSERT_OK(hubcore::internal::ParseModuleAttachment(bytes, &key, &parsed));
  EXPECT_EQ(key, "key");
  EXPECT_EQ(parsed, value);
  EXPECT_EQ(hubcore::internal::ParseModuleAttachment("\x0a\x09k", &key, &parsed).code(),
            StatusCode::kDataLoss);
}
