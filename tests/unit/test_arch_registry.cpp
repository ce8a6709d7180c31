// The architecture registry (ohm/models/arch.h): every ArchSpec is complete and consistent, and
// what reads it (config.json binding, the builder lookup, GGUF, tokenizers) finds each one.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/models/arch.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm {
namespace {

TEST(ArchRegistry, EverySpecIsCompleteAndUnique) {
  std::set<std::string> types, gguf_archs, classes;
  const auto pre = tokenizers::gguf_pre_types();
  ASSERT_FALSE(architectures().empty());
  for (const ArchSpec* a : architectures()) {
    SCOPED_TRACE(a->model_type);
    EXPECT_TRUE(types.insert(a->model_type).second) << "model_type registered twice";
    for (const auto& al : a->aliases) EXPECT_TRUE(types.insert(al).second) << al;
    EXPECT_FALSE(a->hf_classes.empty());
    for (const auto& c : a->hf_classes) EXPECT_TRUE(classes.insert(c).second) << c;
    EXPECT_NE(a->bind_config, nullptr);
    EXPECT_NE(a->build, nullptr);
    if (!a->gguf_arch.empty()) {
      EXPECT_TRUE(gguf_archs.insert(a->gguf_arch).second) << a->gguf_arch;
      EXPECT_NE(a->bind_gguf, nullptr);
      EXPECT_EQ(find_gguf_arch(a->gguf_arch), a);
    }
    // A GGUF-readable architecture has a tensor table; a named tokenizer pre-type is one the GGUF
    // tokenizer knows.
    if (a->bind_gguf) {
      EXPECT_NE(a->gguf_tensors, nullptr);
    }
    if (!a->tokenizer_pre.empty()) {
      EXPECT_NE(std::find(pre.begin(), pre.end(), a->tokenizer_pre), pre.end()) << a->tokenizer_pre;
    }
    EXPECT_EQ(find_arch(a->model_type), a);
    for (const auto& al : a->aliases) EXPECT_EQ(find_arch(al), a);
  }
  EXPECT_EQ(supported_model_types().size(), architectures().size());
}

TEST(ArchRegistry, ConfigBindingGoesThroughTheSpec) {
  for (const ArchSpec* a : architectures()) {
    SCOPED_TRACE(a->model_type);
    // model_type, an alias or only the class name: the spec's own model_type comes back.
    EXPECT_EQ(common(parse_model_config({{"model_type", a->model_type}}, "c")).model_type,
              a->model_type);
    for (const auto& al : a->aliases)
      EXPECT_EQ(common(parse_model_config({{"model_type", al}}, "c")).model_type, a->model_type);
    EXPECT_EQ(
        common(parse_model_config({{"architectures", {a->hf_classes.front()}}}, "c")).model_type,
        a->model_type);
  }
}

TEST(ArchRegistry, UnknownModelTypeListsTheRegisteredOnes) {
  try {
    parse_model_config({{"model_type", "nope"}}, "dir/config.json");
    FAIL() << "no error";
  } catch (const UnsupportedError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("dir/config.json"), std::string::npos) << m;
    EXPECT_NE(m.find("'nope'"), std::string::npos) << m;
    for (const auto& t : supported_model_types()) EXPECT_NE(m.find(t), std::string::npos) << t;
  }
}

}  // namespace
}  // namespace ohm
