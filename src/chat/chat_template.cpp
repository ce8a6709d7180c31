// ChatTemplate: transformers' apply_chat_template / render_jinja_template over ohm's Jinja engine.
#include "ohm/chat/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "ohm/core/error.h"
#include "ohm/formats/model_source.h"

namespace ohm::chat {

namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(ErrorContext().file(path), "cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ojson read_json(const std::string& path) {
  try {
    return ojson::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(ErrorContext().file(path), std::string("invalid JSON: ") + e.what());
  }
}

// transformers' _normalize_chat_messages + _alias_reasoning_fields.
ojson normalize_messages(const ojson& messages) {
  if (!messages.is_array())
    throw InvalidArgument(ErrorContext().key("messages"), "messages must be a JSON array");
  if (messages.empty())
    throw InvalidArgument(
        ErrorContext().key("messages"),
        "Cannot apply chat template to an empty conversation. Provide at least one message.");
  ojson out = ojson::array();
  for (const auto& m : messages) {
    if (!m.is_object())
      throw InvalidArgument(ErrorContext().key("messages"),
                            "Chat messages should be dicts, but got " + m.dump());
    ojson msg = ojson::object();
    for (auto it = m.begin(); it != m.end(); ++it)
      if (!it.value().is_null()) msg[it.key()] = it.value();
    const ojson* reasoning = nullptr;
    for (const char* k : {"reasoning_content", "thinking", "reasoning"})
      if (!reasoning && msg.contains(k)) reasoning = &msg[k];
    if (reasoning) {
      const ojson r = *reasoning;
      // {"thinking": r, **message, "reasoning_content": r}
      ojson aliased = ojson::object();
      aliased["thinking"] = r;
      for (auto it = msg.begin(); it != msg.end(); ++it) aliased[it.key()] = it.value();
      aliased["reasoning_content"] = r;
      msg = std::move(aliased);
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace

ojson ChatTemplate::special_tokens_of(const ojson& config) {
  ojson out = ojson::object();
  auto token_text = [](const ojson& v) -> std::optional<std::string> {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
      return v["content"].get<std::string>();
    return std::nullopt;
  };
  static const char* named[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                "pad_token", "cls_token", "mask_token"};
  for (const char* k : named)
    if (config.contains(k))
      if (auto t = token_text(config[k])) out[k] = *t;
  for (auto it = config.begin(); it != config.end(); ++it) {
    const std::string& k = it.key();
    if (k.size() > 6 && k.compare(k.size() - 6, 6, "_token") == 0 && !out.contains(k))
      if (auto t = token_text(it.value())) out[k] = *t;
  }
  if (config.contains("extra_special_tokens") && config["extra_special_tokens"].is_object())
    for (auto it = config["extra_special_tokens"].begin();
         it != config["extra_special_tokens"].end(); ++it)
      if (auto t = token_text(it.value())) out[it.key()] = *t;
  return out;
}

ChatTemplate ChatTemplate::from_string(const std::string& source, ojson special_tokens,
                                       const std::string& name) {
  ChatTemplate ct;
  ct.templates_.push_back({"default", source, jinja::Template::parse(source, name)});
  ct.special_tokens_ = std::move(special_tokens);
  return ct;
}

ChatTemplate ChatTemplate::from_tokenizer_config(const ojson& config, const std::string& origin) {
  ChatTemplate ct;
  ct.special_tokens_ = special_tokens_of(config);
  if (!config.contains("chat_template") || config["chat_template"].is_null())
    throw NotFoundError(ErrorContext().file(origin).key("chat_template"),
                        "the tokenizer config has no chat template");
  const ojson& t = config["chat_template"];
  if (t.is_string()) {
    const std::string src = t.get<std::string>();
    ct.templates_.push_back({"default", src, jinja::Template::parse(src, origin)});
  } else if (t.is_array()) {
    ct.multi_ = true;
    for (const auto& e : t) {
      if (!e.is_object() || !e.contains("name") || !e.contains("template") ||
          !e["name"].is_string() || !e["template"].is_string())
        throw FormatError(ErrorContext().file(origin).key("chat_template"),
                          "a list chat_template needs {\"name\": str, \"template\": str} entries");
      const std::string name = e["name"].get<std::string>();
      const std::string src = e["template"].get<std::string>();
      ct.templates_.push_back({name, src, jinja::Template::parse(src, origin + ":" + name)});
    }
  } else {
    throw FormatError(ErrorContext().file(origin).key("chat_template"),
                      "chat_template must be a string or a list of {name, template}");
  }
  return ct;
}

ChatTemplate ChatTemplate::load(const std::string& model) {
  std::string config_path;
  std::string dir;
  std::error_code ec;
  if (fs::is_regular_file(model, ec)) {
    config_path = model;
    dir = fs::path(model).parent_path().string();
  } else {
    const ModelSource src = resolve_model(model);
    dir = src.kind == SourceKind::Directory ? src.path : fs::path(src.path).parent_path().string();
    const fs::path p = fs::path(dir) / "tokenizer_config.json";
    if (fs::is_regular_file(p, ec)) config_path = p.string();
  }
  ojson config = ojson::object();
  if (!config_path.empty()) config = read_json(config_path);
  // transformers: chat_template.jinja beside the config wins over the config's string.
  if (fs::path(config_path).filename() == "tokenizer_config.json" || config_path.empty()) {
    const fs::path jinja_file = fs::path(dir.empty() ? "." : dir) / "chat_template.jinja";
    if (fs::is_regular_file(jinja_file, ec))
      config["chat_template"] = read_text(jinja_file.string());
  }
  if (config_path.empty() && !config.contains("chat_template"))
    throw NotFoundError(ErrorContext().file(model),
                        "no tokenizer_config.json or chat_template.jinja found");
  return from_tokenizer_config(config, config_path.empty() ? model : config_path);
}

std::vector<std::string> ChatTemplate::names() const {
  std::vector<std::string> out;
  for (const auto& e : templates_) out.push_back(e.name);
  return out;
}

const ChatTemplate::Entry& ChatTemplate::select(const std::string& name, bool has_tools) const {
  if (templates_.empty()) throw NotFoundError("no chat template");
  if (!multi_) {
    if (!name.empty() && name != "default")
      throw NotFoundError(ErrorContext().key(name), "this model has a single chat template");
    return templates_[0];
  }
  auto find = [&](const std::string& n) -> const Entry* {
    for (const auto& e : templates_)
      if (e.name == n) return &e;
    return nullptr;
  };
  if (!name.empty()) {
    if (const Entry* e = find(name)) return *e;
    throw NotFoundError(ErrorContext().key(name), "no chat template with this name");
  }
  if (has_tools)
    if (const Entry* e = find("tool_use")) return *e;
  if (const Entry* e = find("default")) return *e;
  std::string all;
  for (const auto& e : templates_) all += (all.empty() ? "" : ", ") + e.name;
  throw InvalidArgument(
      "This model has multiple chat templates with no default specified! Pass the name of the "
      "template to use; available names are: " +
      all);
}

const std::string& ChatTemplate::source(const std::string& name) const {
  return select(name, false).source;
}

std::string ChatTemplate::apply(const ojson& messages, const ChatOptions& opt) const {
  const Entry& e = select(opt.template_name, opt.tools.has_value());
  ojson ctx = ojson::object();
  ctx["messages"] = normalize_messages(messages);
  ctx["tools"] = opt.tools ? *opt.tools : ojson(nullptr);
  ctx["documents"] = opt.documents ? *opt.documents : ojson(nullptr);
  ctx["add_generation_prompt"] = opt.add_generation_prompt;
  for (auto it = special_tokens_.begin(); it != special_tokens_.end(); ++it)
    ctx[it.key()] = it.value();
  for (auto it = opt.extra.begin(); it != opt.extra.end(); ++it) ctx[it.key()] = it.value();
  return e.compiled.render(ctx);
}

}  // namespace ohm::chat
