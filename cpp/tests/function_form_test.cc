// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// C++ tests of hubcore::FunctionFormBuilder on the fixture modules: what a signature's function
// form takes and keeps, with no Python interpreter involved.
#include "hubcore/function_form.h"

#include <memory>
#include <set>
#include <string>

#include "hubcore/module_spec.h"
#include "tensorflow/c/tf_datatype.h"
#include "test_util.h"

using hubcore::FunctionArg;
using hubcore::FunctionForm;
using hubcore::FunctionFormBuilder;
using hubcore::ModuleSpec;
using hubcore::StatusCode;
using hubcore_test::DataDir;

namespace {

std::shared_ptr<const ModuleSpec> Load(const std::string& name) {
  std::unique_ptr<ModuleSpec> spec;
  if (!ModuleSpec::Load(DataDir() + "/" + name, &spec).ok()) return nullptr;
  return std::shared_ptr<const ModuleSpec>(std::move(spec));
}

int Count(const FunctionForm& form, FunctionArg::Kind kind) {
  int n = 0;
  for (const auto& arg : form.args) n += arg.kind == kind;
  return n;
}

}  // namespace

TEST(FunctionFormTest, SignatureFormTakesInputsAndVariableHandles) {
  auto spec = Load("tiny");
  ASSERT_NE(spec, nullptr);
  FunctionFormBuilder builder(spec);
  FunctionForm form;
  ASSERT_OK(builder.BuildSignature({}, "default", false, &form));
  EXPECT_EQ(Count(form, FunctionArg::kInput), 1);
  EXPECT_EQ(Count(form, FunctionArg::kState), 2);
  for (const auto& arg : form.args) {
    if (arg.kind == FunctionArg::kState) EXPECT_EQ(arg.dtype, static_cast<int>(TF_RESOURCE));
    if (arg.kind == FunctionArg::kInput) EXPECT_EQ(arg.input_key, std::string("x"));
  }
  EXPECT_EQ(form.outputs.size(), 2u);  // "default" and "sum"
  EXPECT_TRUE(form.targets.empty());
  // Nothing in the form creates or initializes state.
  EXPECT_EQ(form.graph_def.find("VarHandleOp"), std::string::npos);
  EXPECT_EQ(form.graph_def.find("AssignVariableOp"), std::string::npos);
}

TEST(FunctionFormTest, TrainFormRunsTheUpdateOps) {
  auto spec = Load("batchnorm");
  ASSERT_NE(spec, nullptr);
  FunctionFormBuilder builder(spec);
  FunctionForm inference, training;
  ASSERT_OK(builder.BuildSignature({"train"}, "default", false, &inference));
  ASSERT_OK(builder.BuildSignature({"train"}, "default", true, &training));
  EXPECT_TRUE(inference.targets.empty());
  EXPECT_EQ(training.targets.size(), 2u);  // moving mean and variance
  FunctionForm losses;
  ASSERT_OK(builder.BuildRegularizationLosses({"train"}, &losses));
  EXPECT_EQ(losses.outputs.size(), 1u);
}

TEST(FunctionFormTest, TableInitializerTakesTheTableAndTheAsset) {
  auto spec = Load("text_table");
  ASSERT_NE(spec, nullptr);
  FunctionFormBuilder builder(spec);
  std::vector<hubcore::StateResource> state;
  ASSERT_OK(builder.ListState({}, &state));
  std::string table;
  for (const auto& s : state) {
    if (!s.is_variable) table = s.node;
  }
  ASSERT_FALSE(table.empty());
  FunctionForm init;
  ASSERT_OK(builder.BuildInitializer({}, table, &init));
  EXPECT_EQ(init.targets.size(), 1u);
  EXPECT_EQ(Count(init, FunctionArg::kState), 1);
  EXPECT_EQ(Count(init, FunctionArg::kAsset), 1);
  for (const auto& arg : init.args) {
    if (arg.kind == FunctionArg::kAsset) {
      EXPECT_NE(arg.asset_path.find("/assets/"), std::string::npos);
    }
  }
}

TEST(FunctionFormTest, UnknownSignatureOrVariantIsNamedNotFound) {
  auto spec = Load("tiny");
  ASSERT_NE(spec, nullptr);
  FunctionFormBuilder builder(spec);
  FunctionForm form;
  EXPECT_EQ(builder.BuildSignature({}, "nope", false, &form).code(),
            StatusCode::kSignatureNotFound);
  EXPECT_EQ(builder.BuildSignature({"gpu"}, "default", false, &form).code(),
            StatusCode::kVariantNotFound);
}
