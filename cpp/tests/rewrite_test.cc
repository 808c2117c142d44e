// Copyright 2026 The hubcore Authors. SPDX-License-Identifier: Apache-2.0
//
// Direct tests of hubcore::GraphRewriter on the fixture modules: prefixing, pruning, colocation,
// input mapping and the checkpoint restore of the state graph.
#include <map>
#include <memory>
#include <set>
#include <string>

#include "hubcore/graph_rewrite.h"
#include "hubcore/module_spec.h"
#include "tensorflow/core/framework/attr_value.pb.h"
#include "tensorflow/core/framework/graph.pb.h"
#include "tensorflow/core/framework/node_def.pb.h"
#include "tensorflow/core/framework/variable.pb.h"
#include "test_util.h"

using hubcore::ApplyGraph;
using hubcore::ApplyGraphOptions;
using hubcore::GraphRewriter;
using hubcore::ModuleSpec;
using hubcore::OutputRef;
using hubcore::StateGraph;
using hubcore::StateGraphOptions;
using hubcore::StatusCode;
using hubcore_test::DataDir;

namespace {

std::shared_ptr<const ModuleSpec> Load(const std::string& name) {
  std::unique_ptr<ModuleSpec> spec;
  const hubcore::Status s = ModuleSpec::Load(DataDir() + "/" + name, &spec);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return std::shared_ptr<const ModuleSpec>(std::move(spec));
}

tensorflow::GraphDef Parse(const std::string& bytes) {
  tensorflow::GraphDef graph;
  EXPECT_TRUE(graph.ParseFromString(bytes));
  return graph;
}

std::map<std::string, const tensorflow::NodeDef*> ByName(const tensorflow::GraphDef& graph) {
  std::map<std::string, const tensorflow::NodeDef*> nodes;
  for (const auto& node : graph.node()) nodes[node.name()] = &node;
  return nodes;
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string NodeOf(const std::string& input) {
  std::string name = input[0] == '^' ? input.substr(1) : input;
  return name.substr(0, name.find(':'));
}

StateGraph BuildState(GraphRewriter& rewriter, const std::string& scope, bool restore) {
  StateGraphOptions options;
  options.scope = scope;
  if (restore) options.checkpoint_prefix = rewriter.spec().checkpoint_prefix();
  StateGraph state;
  const hubcore::Status s = rewriter.BuildStateGraph({}, options, &state);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return state;
}

ApplyGraph BuildApply(GraphRewriter& rewriter, const std::string& signature) {
  ApplyGraphOptions options;
  options.scope = "outer/module_apply_" + signature;
  options.state_scope = "outer/module";
  ApplyGraph apply;
  const hubcore::Status s = rewriter.BuildApplyGraph({}, signature, options, &apply);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return apply;
}

}  // namespace

TEST(GraphRewriterTest, StateGraphNamesCarryTheInstanceScope) {
  GraphRewriter rewriter(Load("tiny"));
  const StateGraph state = BuildState(rewriter, "outer/module", /*restore=*/true);
  const tensorflow::GraphDef graph = Parse(state.graph_def);
  ASSERT_GT(graph.node_size(), 0);
  EXPECT_EQ(state.num_nodes, graph.node_size());
  const auto nodes = ByName(graph);
  for (const auto& node : graph.node()) {
    EXPECT_TRUE(StartsWith(node.name(), "outer/module/")) << node.name();
    for (const auto& input : node.input()) {
      EXPECT_TRUE(nodes.count(NodeOf(input))) << node.name() << " <- " << input;
    }
    auto shared = node.attr().find("shared_name");
    if (shared != node.attr().end() && !shared->second.s().empty()) {
      EXPECT_TRUE(StartsWith(shared->second.s(), "outer/module/")) << node.name();
    }
  }
  const auto& variables = state.bytes_lists.at("variables");
  ASSERT_EQ(variables.size(), 2u);  // dense/kernel, dense/bias
  for (const auto& bytes : variables) {
    tensorflow::VariableDef def;
    ASSERT_TRUE(def.ParseFromString(bytes));
    EXPECT_TRUE(StartsWith(def.variable_name(), "outer/module/dense/")) << def.variable_name();
    EXPECT_TRUE(nodes.count(NodeOf(def.initializer_name()))) << def.initializer_name();
  }
}

TEST(GraphRewriterTest, StateGraphRestoresEveryVariableWithOneRestoreV2) {
  GraphRewriter rewriter(Load("partitioned"));
  const tensorflow::GraphDef graph = Parse(BuildState(rewriter, "m", /*restore=*/true).graph_def);
  int restores = 0, assigns = 0, outputs = 0;
  for (const auto& node : graph.node()) {
    if (node.op() == "RestoreV2") {
      ++restores;
      outputs = node.attr().at("dtypes").list().type_size();
    }
    if (StartsWith(node.op(), "Assign") &&
        node.name().find("/checkpoint_initializer") != std::string::npos) {
      ++assigns;
      EXPECT_TRUE(StartsWith(node.input(1), "m/checkpoint_initializer:")) << node.input(1);
    }
  }
  EXPECT_EQ(restores, 1);
  // The partitioned table (3 parts) and the other variable: one assign per part or variable.
  EXPECT_EQ(assigns, 4);
  EXPECT_EQ(outputs, assigns);

  // Without a checkpoint, the variables keep their own initializers and nothing is restored.
  const tensorflow::GraphDef fresh = Parse(BuildState(rewriter, "m", /*restore=*/false).graph_def);
  for (const auto& node : fresh.node()) EXPECT_NE(node.op(), "RestoreV2") << node.name();
}

TEST(GraphRewriterTest, RestoreChecksTheCheckpoint) {
  GraphRewriter rewriter(Load("tiny"));
  StateGraphOptions options;
  options.scope = "m";
  options.checkpoint_prefix = DataDir() + "/batchnorm/variables/variables";  // other variables
  StateGraph state;
  const hubcore::Status s = rewriter.BuildStateGraph({}, options, &state);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("not found in"), std::string::npos) << s.message();
}

TEST(GraphRewriterTest, ApplyGraphKeepsOnlyTheSignatureClosure) {
  auto spec = Load("tiny");
  GraphRewriter rewriter(spec);
  const ApplyGraph apply = BuildApply(rewriter, "default");
  const tensorflow::GraphDef graph = Parse(apply.graph_def);
  EXPECT_EQ(apply.num_nodes, graph.node_size());
  EXPECT_LT(graph.node_size(), spec->FindVariant({})->num_nodes);
  for (const auto& node : graph.node()) {
    EXPECT_TRUE(StartsWith(node.name(), "outer/module_apply_default/")) << node.name();
    // State ops stay in the state graph; the apply graph reads them through the input map.
    EXPECT_NE(node.op(), "VarHandleOp") << node.name();
    EXPECT_NE(node.op(), "VariableV2") << node.name();
  }
  // Another signature prunes to another closure.
  const tensorflow::GraphDef encode = Parse(BuildApply(rewriter, "encode").graph_def);
  std::set<std::string> a, b;
  for (const auto& node : graph.node()) a.insert(node.name().substr(node.name().find('/', 6)));
  for (const auto& node : encode.node()) b.insert(node.name().substr(node.name().find('/', 6)));
  EXPECT_NE(a, b);
}

TEST(GraphRewriterTest, ApplyGraphInputMapNamesStateAndSignatureInputs) {
  GraphRewriter rewriter(Load("tiny"));
  const ApplyGraph apply = BuildApply(rewriter, "default");
  const tensorflow::GraphDef graph = Parse(apply.graph_def);
  std::set<std::string> referenced;
  for (const auto& node : graph.node()) {
    for (const auto& input : node.input()) referenced.insert(input);
  }
  int state = 0, inputs = 0;
  for (const auto& mapping : apply.input_map) {
    EXPECT_TRUE(referenced.count(mapping.key)) << mapping.key;
    if (mapping.is_state) {
      ++state;
      EXPECT_TRUE(StartsWith(mapping.key, "outer/module/") ||
                  StartsWith(mapping.key, "^outer/module/"))
          << mapping.key;
    } else {
      ++inputs;
      EXPECT_EQ(mapping.input_key, "x");
      EXPECT_EQ(mapping.component, 0);
      EXPECT_EQ(mapping.key, "outer/module_apply_default/x:0");
    }
  }
  EXPECT_GT(state, 0);  // the variables
  EXPECT_EQ(inputs, 1);
  ASSERT_EQ(apply.outputs.count("default"), 1u);
  const OutputRef& out = apply.outputs.at("default").at(0);
  EXPECT_EQ(out.kind, OutputRef::kImported);
  EXPECT_TRUE(StartsWith(out.tensor, "outer/module_apply_default/")) << out.tensor;

  hubcore::ApplyGraph missing;
  EXPECT_EQ(rewriter.BuildApplyGraph({}, "nope", {}, &missing).code(),
            StatusCode::kSignatureNotFound);
  EXPECT_EQ(rewriter.BuildApplyGraph({"serve"}, "default", {}, &missing).code(),
            StatusCode::kVariantNotFound);
}

TEST(GraphRewriterTest, ColocationFollowsTheScopes) {
  GraphRewriter rewriter(Load("partitioned"));
  for (bool restore : {true, false}) {
    const StateGraph state = BuildState(rewriter, "outer/m", restore);
    const tensorflow::GraphDef graph = Parse(state.graph_def);
    const auto nodes = ByName(graph);
    std::set<std::string> colocated;
    for (const auto& node : graph.node()) {
      auto it = node.attr().find("_class");
      if (it == node.attr().end()) continue;
      colocated.insert(node.name());
      for (const auto& entry : it->second.list().s()) {
        ASSERT_TRUE(StartsWith(entry, "loc:@outer/m/")) << node.name() << ": " << entry;
        EXPECT_TRUE(nodes.count(entry.substr(5))) << node.name() << ": " << entry;
      }
    }
    EXPECT_FALSE(colocated.empty());  // the partitions' reads and (restored) assigns
    EXPECT_EQ(colocated,
              std::set<std::string>(state.colocated_nodes.begin(), state.colocated_nodes.end()));
  }
  // An apply graph colocates with the caller's tensors fed to inputs.
  ApplyGraphOptions options;
  options.scope = "outer/m_apply";
  options.state_scope = "outer/m";
  ApplyGraph apply;
  ASSERT_OK(rewriter.BuildApplyGraph({}, "default", options, &apply));
  for (const auto& name : apply.colocated_nodes) {
    EXPECT_TRUE(StartsWith(name, "outer/m_apply/")) << name;
  }
}
