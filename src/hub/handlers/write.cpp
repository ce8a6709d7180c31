// Write API: repo creation, deletion and settings, preupload, commits (JSON and NDJSON bodies),
// branches and tags, and the model-card check (validate-yaml).
#include <map>
#include <tuple>

#include "../http/reply.h"
#include "handlers.h"
#include "ohm/hub/card.h"
#include "ohm/hub/hash.h"

namespace ohm::hub::handlers {

using namespace http;

void validate_yaml(Service& svc, Request& c) {
  json j = parse_object(read_body(c, svc.opt.max_json_bytes), "validate-yaml body");
  ModelCard card = parse_model_card(get_str(j, "content", "validate-yaml body"));
  if (!card.error.empty())
    return send_json(c, {{"errors", json::array({{{"message", card.error}}})}}, 400);
  send_json(c, {{"errors", json::array()}, {"warnings", json::array()}});
}

static std::tuple<RepoType, std::string, std::string> repo_from_body(Request& c, const json& j,
                                                                     const char* what) {
  std::string name = get_str(j, "name", what), ns = get_str(j, "organization", what);
  if (name.find('/') != std::string::npos) {
    ns = name.substr(0, name.find('/'));
    name = name.substr(name.find('/') + 1);
    if (ns.empty() || name.find('/') != std::string::npos)
      throw BadRequest(std::string(what) + ": invalid repo id (expected namespace/name)");
  }
  if (ns.empty()) ns = c.caller.user;
  RepoType t = RepoType::Model;
  if (std::string ty = get_str(j, "type", what); !ty.empty() && !parse_repo_type(ty, t))
    throw BadRequest(std::string(what) + ": unknown repo type '" + ty + "'");
  if (name.empty()) throw BadRequest(std::string(what) + ": 'name' is required");
  return {t, ns, name};
}

void repo_create(Service& svc, Request& c) {
  // refused before the body is read: an anonymous client gets no worker time for its upload
  if (c.caller.anonymous()) throw Unauthorized("You must be authenticated to create a repo");
  json j = parse_object(read_body(c, svc.opt.max_json_bytes), "create repo body");
  auto [t, ns, name] = repo_from_body(c, j, "create repo body");
  bool priv = false;
  if (j.contains("private") && j["private"].is_boolean()) priv = j["private"].get<bool>();
  if (std::string v = get_str(j, "visibility", "create repo body"); !v.empty())
    priv = v != "public";
  const std::string url = c.base + "/" + url_prefix(t) + ns + "/" + name;
  try {
    RepoInfo r = svc.hub.create_repo(c.caller, t, ns, name, priv);
    send_json(c, {{"url", url}, {"name", r.full_id()}, {"id", "ohm" + std::to_string(r.id)}});
  } catch (const Conflict& e) {  // huggingface_hub's exist_ok reads the url
    c.res.set_header("X-Error-Message", header_safe(e.what()));
    send_json(c, {{"error", e.what()}, {"url", url}}, 409);
  }
}

void repo_delete(Service& svc, Request& c) {
  json j = parse_object(read_body(c, svc.opt.max_json_bytes), "delete repo body");
  auto [t, ns, name] = repo_from_body(c, j, "delete repo body");
  svc.hub.delete_repo(c.caller, t, ns, name);
  send_json(c, json::object());
}

void settings(Service& svc, Request& c) {
  RepoInfo r = svc.hub.repo_for_write(c.caller, c.type, c.ns, c.name);
  json j = parse_object(read_body(c, svc.opt.max_json_bytes), "settings body");
  bool priv = r.is_private;
  std::string gated = r.gated;
  if (j.contains("private") && j["private"].is_boolean()) priv = j["private"].get<bool>();
  if (std::string v = get_str(j, "visibility", "settings body"); !v.empty()) priv = v != "public";
  if (j.contains("gated")) {
    if (j["gated"].is_boolean() && !j["gated"].get<bool>())
      gated = "";
    else if (j["gated"].is_string() && (j["gated"] == "auto" || j["gated"] == "manual"))
      gated = j["gated"];
    else
      throw BadRequest("settings: gated must be false, \"auto\" or \"manual\"");
  }
  svc.hub.meta().update_repo_settings(r.id, priv, gated);
  send_json(c, {{"private", priv}, {"gated", gated.empty() ? json(false) : json(gated)}});
}

void preupload(Service& svc, Request& c) {
  RepoInfo r = svc.hub.repo_for_write(c.caller, c.type, c.ns, c.name);
  const std::string& rev = c.arg("revision");
  json j = parse_object(read_body(c, svc.opt.max_json_bytes), "preupload body");
  if (!j.contains("files") || !j["files"].is_array())
    throw BadRequest("preupload body: 'files' must be a list");
  const std::string commit = svc.hub.resolve(r, rev);
  auto files = svc.hub.files(r, commit);
  std::map<std::string, const FileEntry*> by_path;
  for (auto& f : files) by_path[f.path] = &f;
  json out = json::array();
  for (auto& f : j["files"]) {
    if (!f.is_object()) throw BadRequest("preupload body: each file must be an object");
    const std::string path = get_str(f, "path", "preupload file");
    if (auto e = check_file_path(path); !e.empty())
      throw BadRequest("Invalid path '" + path + "': " + e);
    uint64_t size = 0;
    if (f.contains("size")) {
      if (!f["size"].is_number_unsigned() && !f["size"].is_number_integer())
        throw BadRequest("preupload: size must be an integer");
      size = f["size"].get<uint64_t>();
    }
    std::string sample;
    base64_decode(get_str(f, "sample", "preupload file"), sample);
    json e = {{"path", path},
              {"uploadMode", svc.hub.upload_mode(r, commit, path, size, sample)},
              {"shouldIgnore", false}};
    if (auto it = by_path.find(path); it != by_path.end())
      e["oid"] = it->second->lfs ? it->second->lfs->sha256 : it->second->oid;
    out.push_back(e);
  }
  send_json(c, {{"files", out}, {"commitOid", commit}});
}

// Upload URLs are signed for one object, size, expiry and repo: the PUT grants the object to
// that repo (LFS objects are stored once but scoped to the repos they were uploaded to).
void commit(Service& svc, Request& c) {
  const RepoType t = c.type;
  const std::string& rev = c.arg("revision");
  RepoInfo r = svc.hub.repo_for_write(c.caller, t, c.ns, c.name);
  if (truthy(c.param("create_pr"))) throw BadRequest("pull requests are not supported by this hub");
  if (auto e = check_revision(rev); !e.empty()) throw BadRequest("Invalid revision: " + e);
  if (Hub::is_convert_ref(rev))
    throw Forbidden("Invalid revision: " + rev + " is maintained by the Hub (read-only)");
  const std::string body = read_body(c, svc.opt.max_commit_bytes);
  std::string summary, description, parent;
  std::vector<CommitOp> ops;
  auto path_of = [](const json& v, const std::string& what) {
    // present; its value (even "") is validated by Hub::commit, whose errors name it
    if (!v.contains("path")) throw BadRequest(what + ": 'path' is required");
    return get_str(v, "path", what);
  };
  auto add_file = [&](const json& v) {
    CommitOp op;
    op.kind = CommitOp::Kind::File;
    op.path = path_of(v, "file");
    const std::string content = get_str(v, "content", "file");
    const std::string enc = get_str(v, "encoding", "file");
    if (enc == "base64" || enc.empty()) {
      if (!base64_decode(content, op.content))
        throw BadRequest("file " + op.path + ": invalid base64 content");
    } else if (enc == "utf-8" || enc == "utf8") {
      op.content = content;
    } else {
      throw BadRequest("file " + op.path + ": unknown encoding '" + enc + "'");
    }
    ops.push_back(std::move(op));
  };
  auto add_lfs = [&](const json& v) {
    CommitOp op;
    op.kind = CommitOp::Kind::LfsFile;
    op.path = path_of(v, "lfsFile");
    op.sha256 = get_str(v, "oid", "lfsFile");
    if (std::string algo = get_str(v, "algo", "lfsFile"); !algo.empty() && algo != "sha256")
      throw BadRequest("lfsFile " + op.path + ": unsupported algo '" + algo + "'");
    if (v.contains("size") && !v["size"].is_null()) {
      if (!v["size"].is_number_integer() || v["size"].get<int64_t>() < 0)
        throw BadRequest("lfsFile: size must be a non-negative integer");
      op.size = v["size"].get<uint64_t>();
    }
    ops.push_back(std::move(op));
  };
  auto add_del = [&](const json& v, bool folder) {
    CommitOp op;
    op.kind = folder ? CommitOp::Kind::DeleteFolder : CommitOp::Kind::DeleteFile;
    op.path = path_of(v, folder ? "deletedFolder" : "deletedFile");
    ops.push_back(std::move(op));
  };
  if (c.req.get_header_value("Content-Type").starts_with("application/json")) {
    json j = parse_object(body, "commit body");
    summary = get_str(j, "summary", "commit body");
    description = get_str(j, "description", "commit body");
    parent = get_str(j, "parentCommit", "commit body");
    auto list = [&](const char* k) {
      if (!j.contains(k)) return json::array();
      if (!j[k].is_array())
        throw BadRequest(std::string("commit body: '") + k + "' must be a list");
      return j[k];
    };
    for (auto& v : list("files")) add_file(v);
    for (auto& v : list("lfsFiles")) add_lfs(v);
    for (auto& v : list("deletedFiles")) add_del(v, false);
    for (auto& v : list("deletedFolders")) add_del(v, true);
  } else {
    size_t pos = 0, lineno = 0;
    bool have_header = false;
    while (pos < body.size()) {
      size_t eol = body.find('\n', pos);
      if (eol == std::string::npos) eol = body.size();
      std::string_view line(body.data() + pos, eol - pos);
      pos = eol + 1;
      ++lineno;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      json j = parse_json(line, "commit line " + std::to_string(lineno));
      if (!j.is_object() || !j.contains("key") || !j["key"].is_string() || !j.contains("value") ||
          !j["value"].is_object())
        throw BadRequest("commit line " + std::to_string(lineno) +
                         ": expected {\"key\": ..., \"value\": {...}}");
      const std::string key = j["key"];
      const json& v = j["value"];
      if (!have_header && key != "header")
        throw BadRequest("commit: the first line must be the header");
      if (key == "header") {
        if (have_header) throw BadRequest("commit: more than one header line");
        have_header = true;
        summary = get_str(v, "summary", "commit header");
        description = get_str(v, "description", "commit header");
        parent = get_str(v, "parentCommit", "commit header");
      } else if (key == "file")
        add_file(v);
      else if (key == "lfsFile")
        add_lfs(v);
      else if (key == "deletedFile")
        add_del(v, false);
      else if (key == "deletedFolder")
        add_del(v, true);
      else
        throw BadRequest("commit line " + std::to_string(lineno) + ": unknown key '" + key + "'");
    }
    if (!have_header) throw BadRequest("commit: missing header line");
  }
  if (!parent.empty() &&
      (parent.size() < 5 || parent.size() > 40 || !is_hex(parent, parent.size())))
    throw BadRequest("commit: parentCommit must be a hex commit id");
  CommitInfo ci = svc.hub.commit(c.caller, r, rev, summary, description, parent, ops);
  send_json(c, {{"success", true},
                {"commitOid", ci.id},
                {"commitUrl", c.base + "/" + url_prefix(t) + r.full_id() + "/commit/" + ci.id},
                {"commitMessage", ci.title},
                {"hookOutput", ""}});
}

void branch(Service& svc, Request& c) {
  RepoInfo r = svc.hub.repo_for_write(c.caller, c.type, c.ns, c.name);
  const std::string& b = c.arg("branch");
  if (c.req.method == "POST") {
    json j = parse_object(read_body(c, svc.opt.max_json_bytes), "branch body");
    svc.hub.create_branch(r, b, get_str(j, "startingPoint", "branch body"));
  } else if (c.req.method == "DELETE") {
    if (Hub::is_convert_ref(b))
      throw Forbidden("Cannot delete " + b + ": it is maintained by the Hub");
    svc.hub.delete_branch(r, b);
  } else {
    throw MethodNotAllowed("method not allowed");
  }
  send_json(c, json::object());
}

void tag(Service& svc, Request& c) {
  RepoInfo r = svc.hub.repo_for_write(c.caller, c.type, c.ns, c.name);
  const std::string& rev = c.arg("tag");
  if (c.req.method == "POST") {
    json j = parse_object(read_body(c, svc.opt.max_json_bytes), "tag body");
    const std::string tg = get_str(j, "tag", "tag body");
    if (tg.empty()) throw BadRequest("tag body: 'tag' is required");
    svc.hub.create_tag(r, tg, rev, get_str(j, "message", "tag body"));
  } else if (c.req.method == "DELETE") {
    svc.hub.delete_tag(r, rev);
  } else {
    throw MethodNotAllowed("method not allowed");
  }
  send_json(c, json::object());
}

}  // namespace ohm::hub::handlers
