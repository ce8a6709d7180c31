// LFS API: the git LFS batch endpoint (basic transfer), self-authorising upload URLs signed for
// one object, size, expiry and repo, and verify.
#include "../http/reply.h"
#include "handlers.h"
#include "ohm/hub/hash.h"

namespace ohm::hub::handlers {

using namespace http;

static std::string lfs_sig(const Service& svc, const std::string& oid, uint64_t size, int64_t exp,
                           int64_t repo) {
  return sha256_hex(svc.secret + "|" + oid + "|" + std::to_string(size) + "|" +
                    std::to_string(exp) + "|" + std::to_string(repo));
}

void lfs_batch(Service& svc, Request& c) {
  const RepoType t = c.type;
  json j = parse_object(read_body(c, svc.opt.max_json_bytes), "LFS batch body");
  const std::string op = get_str(j, "operation", "LFS batch body");
  RepoInfo r = op == "upload" ? svc.hub.repo_for_write(c.caller, t, c.ns, c.name)
                              : svc.hub.repo_for_read(c.caller, t, c.ns, c.name);
  if (op != "upload" && op != "download")
    throw BadRequest("LFS batch: unknown operation '" + op + "'");
  if (!j.contains("objects") || !j["objects"].is_array())
    throw BadRequest("LFS batch: 'objects' must be a list");
  const int64_t exp = now_s() + 3600;
  json objs = json::array();
  for (auto& o : j["objects"]) {
    if (!o.is_object()) throw BadRequest("LFS batch: each object must be an object");
    const std::string oid = get_str(o, "oid", "LFS object");
    int64_t size =
        o.contains("size") && o["size"].is_number_integer() ? o["size"].get<int64_t>() : -1;
    json e = {{"oid", oid}, {"size", size}};
    if (!is_hex(oid, 64) || size < 0) {
      e["error"] = {{"code", 422}, {"message", "invalid oid or size"}};
    } else if (static_cast<uint64_t>(size) > svc.opt.max_lfs_bytes) {
      e["error"] = {{"code", 422}, {"message", "object larger than the server limit"}};
    } else if (op == "upload") {
      // Objects the caller cannot already read get an upload action exactly as if absent: the
      // answer never says whether the Hub stores an oid elsewhere.
      auto have = svc.hub.blobs().size(BlobKind::Lfs, oid);
      if (!have || *have != static_cast<uint64_t>(size) || !svc.hub.lfs_visible(c.caller, r, oid)) {
        e["authenticated"] = true;
        e["actions"] = {
            {"upload",
             {{"href", c.base + "/api/lfs-upload/" + oid + "?size=" + std::to_string(size) +
                           "&exp=" + std::to_string(exp) + "&repo=" + std::to_string(r.id) +
                           "&sig=" + lfs_sig(svc, oid, size, exp, r.id)},
              {"expires_in", 3600}}},
            {"verify",
             {{"href", c.base + "/api/lfs-verify/" + plural(t) + "/" + r.full_id()},
              {"expires_in", 3600}}}};
      }
    } else {
      if (!svc.hub.lfs_visible(c.caller, r, oid) || !svc.hub.blobs().has(BlobKind::Lfs, oid))
        e["error"] = {{"code", 404}, {"message", "object not found"}};
    }
    objs.push_back(e);
  }
  c.res.status = 200;
  c.res.set_content(dump({{"transfer", "basic"}, {"objects", objs}, {"hash_algo", "sha256"}}),
                    "application/vnd.git-lfs+json");
}

void lfs_put(Service& svc, Request& c) {
  const std::string& oid = c.arg("oid");
  const std::string ssize = c.param("size"), sexp = c.param("exp"), sig = c.param("sig");
  const std::string srepo = c.param("repo");
  auto digits = [](const std::string& v) {
    return !v.empty() && v.size() <= 15 && v.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!is_hex(oid, 64) || !digits(ssize) || !digits(sexp) || !digits(srepo)) {
    c.res.set_header("Connection", "close");
    throw BadRequest("malformed LFS upload URL");
  }
  const uint64_t size = std::stoull(ssize);
  const int64_t exp = std::stoll(sexp);
  const int64_t repo_id = std::stoll(srepo);
  const std::string want = lfs_sig(svc, oid, size, exp, repo_id);
  unsigned diff = want.size() != sig.size();
  for (size_t i = 0; i < std::min(want.size(), sig.size()); ++i)
    diff |= static_cast<unsigned>(want[i] ^ sig[i]);
  if (diff || exp < now_s()) {
    c.res.set_header("Connection", "close");
    throw Forbidden("invalid or expired LFS upload URL");
  }
  if (c.req.has_header("Content-Length") && c.req.get_header_value("Content-Length") != ssize) {
    c.res.set_header("Connection", "close");
    throw BadRequest("Content-Length does not match the announced object size");
  }
  auto w = svc.hub.blobs().lfs_writer();
  bool too_big = false;
  c.consumed = true;
  bool ok = c.reader ? (*c.reader)([&](const char* d, size_t n) {
    if (w->written() + n > size) {
      too_big = true;
      return false;
    }
    w->write(d, n);
    return true;
  })
                     : (w->write(c.req.body.data(), c.req.body.size()), true);
  if (!ok || too_big) {
    c.res.set_header("Connection", "close");
    throw BadRequest(too_big ? "more data than the announced size" : "upload interrupted");
  }
  // The bytes are hashed even when the object is already stored: only someone holding the
  // content can get it granted to their repo.
  w->commit(oid, size);  // InvalidArgument (-> 400) on mismatch; temp file removed
  svc.hub.meta().grant_lfs(repo_id, oid, "");
  send_json(c, json::object());
}

void lfs_verify(Service& svc, Request& c) {
  RepoType t;
  if (!parse_repo_type(c.arg("type"), t)) throw NotFound("not found");
  RepoInfo r = svc.hub.repo_for_write(c.caller, t, c.ns, c.name);
  json j = parse_object(read_body(c, svc.opt.max_json_bytes), "LFS verify body");
  const std::string oid = get_str(j, "oid", "LFS verify body");
  if (!is_hex(oid, 64)) throw BadRequest("LFS verify: invalid oid");
  auto have = svc.hub.blobs().size(BlobKind::Lfs, oid);
  if (!have || !svc.hub.lfs_visible(c.caller, r, oid))
    throw NotFound("LFS object " + oid + " not found for this repository");
  if (j.contains("size") && j["size"].is_number_integer() && j["size"].get<uint64_t>() != *have)
    throw Unprocessable("LFS object " + oid + " has a different size");
  send_json(c, {{"message", "Verified"}});
}

}  // namespace ohm::hub::handlers
