// The hub's domain logic, independent of HTTP: users, tokens and access rules, repos, revision
// resolution, commits built from operations, branches/tags, file history, cards, download counts.
// Storage goes through BlobStore and MetadataStore so other backends can be plugged in.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ohm/hub/blob_store.h"
#include "ohm/hub/errors.h"
#include "ohm/hub/metadata.h"
#include "ohm/hub/validate.h"

namespace ohm::hub {

struct Caller {
  std::string user;   // empty: anonymous
  std::string scope;  // "read" | "write"
  std::string token_name;
  int64_t token_id = 0;
  bool admin = false;  // a hub administrator (users.is_admin)
  std::vector<std::string> orgs;
  bool anonymous() const { return user.empty(); }
};

struct CommitOp {
  enum class Kind { File, LfsFile, DeleteFile, DeleteFolder };
  Kind kind = Kind::File;
  std::string path;
  std::string content;           // File
  std::string sha256;            // LfsFile
  std::optional<uint64_t> size;  // LfsFile (looked up when absent)
};

// Model signing on the Hub (docs/safety.md): public keys the hub trusts, and whether every
// commit to a model repo must carry a model.sig that verifies with one of them.
struct TrustedKey {
  std::string name;         // the key file's name without extension
  std::string fingerprint;  // SHA-256 of its PEM (model_signing's key hint)
  std::string pem;
};
struct SigningPolicy {
  bool require_signed = false;
  std::vector<TrustedKey> trusted;
};
// Every *.pub / *.pem public key in `dir` (InvalidArgument naming a file that is not one).
std::vector<TrustedKey> load_trusted_keys(const std::string& dir);

// A commit's model.sig as checked against the trusted keys and the commit's files.
struct SignatureStatus {
  bool is_signed = false;  // a model.sig is present
  bool verified = false;   // it verifies with a trusted key and matches every file
  std::string key_fingerprint, key_name;
  std::string reason;  // why not verified (empty when verified)
};

// Files at or above this size are uploaded through LFS.
inline constexpr uint64_t kLfsThreshold = 10 * 1000 * 1000;

class Hub {
 public:
  // Disk blob store under data_dir/blobs and SQLite at data_dir/hub.sqlite.
  explicit Hub(const std::string& data_dir);
  Hub(std::unique_ptr<BlobStore> blobs, std::unique_ptr<MetadataStore> meta);

  BlobStore& blobs() { return *blobs_; }
  MetadataStore& meta() { return *meta_; }

  // Users, organisations, tokens (tokens are stored as their sha256).
  void add_user(const std::string& name, bool is_org, const std::string& fullname = "",
                const std::string& email = "");
  void add_member(const std::string& org, const std::string& user);
  std::string create_token(const std::string& user, const std::string& scope,
                           const std::string& name);
  // From an Authorization header value ("Bearer hf_..."; empty = anonymous). Unauthorized when
  // unknown.
  Caller authenticate(std::string_view authorization);

  // Administration (the CLI trusts its operator; the HTTP/web layers check Caller::admin).
  void set_admin(const std::string& user, bool admin);
  std::vector<UserInfo> list_users() { return meta_->list_users(); }
  // BadRequest while the user or organisation still owns repos; NotFound when unknown.
  void delete_user(const std::string& name);
  std::vector<TokenInfo> list_tokens(const std::string& user = "");
  // A token by its numeric id, or by its name when exactly one token has it (BadRequest when
  // several, NotFound when none). Returns the revoked token. Sessions made from it end with it.
  TokenInfo revoke_token(const std::string& id_or_name);

  // Web sessions: login with a user token; the browser gets an opaque random id (kept server
  // side as its sha256, in memory) and every POST form carries the session's CSRF token.
  // A session ends at logout, after kSessionTtlMs, or when its token is revoked.
  struct WebSession {
    std::string id, csrf;  // id only on creation
    Caller caller;
  };
  static constexpr int64_t kSessionTtlMs = 12ll * 3600 * 1000;
  WebSession login(std::string_view token);  // Unauthorized for unknown tokens
  std::optional<WebSession> session(const std::string& id);
  void logout(const std::string& id);

  bool can_read(const Caller& c, const RepoInfo& r) const;
  bool can_write(const Caller& c, const RepoInfo& r) const;
  bool can_write_namespace(const Caller& c, const std::string& ns) const;
  // repo_not_found (errors.h: Unauthorized when anonymous, else NotFound) when missing or
  // invisible.
  RepoInfo repo_for_read(const Caller& c, RepoType t, const std::string& ns,
                         const std::string& name);
  // As repo_for_read, then Unauthorized without a token and Forbidden without write access.
  RepoInfo repo_for_write(const Caller& c, RepoType t, const std::string& ns,
                          const std::string& name);
  // gated_repo (Unauthorized/Forbidden, GatedRepo) for gated repos the caller neither owns nor was
  // granted access to.
  void check_gate(const Caller& c, const RepoInfo& r) const;
  bool has_gate_access(const Caller& c, const RepoInfo& r) const;
  // Evaluation results (the card's model-index: /api/models?expand=evalResults, /leaderboard,
  // the eval page) are shown only to callers who may read the repo's files: private repos to
  // their owners, gated ones to those who passed the gate.
  bool can_read_eval_results(const Caller& c, const RepoInfo& r) const;

  // Likes (authenticated callers; one per user and repo). Returns the repo's new like count.
  int64_t like(const Caller& c, const RepoInfo& r, bool like);

  // Gated-repo access requests as the Hub does them. request_access: the caller asks; "auto"
  // repos accept at once, "manual" ones leave it pending (BadRequest when the repo is not
  // gated).
  // Returns the request's status.
  std::string request_access(const Caller& c, const RepoInfo& r, const std::string& fields_json);
  // The repo's writers move a request to pending/accepted/rejected (NotFound when there is none) or
  // grant access to a user who did not ask (BadRequest when already granted,
  // NotFound for unknown users).
  void handle_access(const RepoInfo& r, const std::string& user, const std::string& status);
  void grant_access(const RepoInfo& r, const std::string& user);

  RepoInfo create_repo(const Caller& c, RepoType t, const std::string& ns, const std::string& name,
                       bool is_private);
  void delete_repo(const Caller& c, RepoType t, const std::string& ns, const std::string& name);

  // Branch, tag, full sha, unique sha prefix (>= 7), refs/heads/x, refs/tags/x -> full commit id.
  std::string resolve(const RepoInfo& r, const std::string& rev);
  std::vector<FileEntry> files(const RepoInfo& r, const std::string& commit);
  std::optional<FileEntry> file(const RepoInfo& r, const std::string& commit,
                                const std::string& path);

  // Whether `c` may reference LFS object `sha256` in repo `r`: it was uploaded to `r` (a grant),
  // `r`'s history already references it, or a repo `c` can read (gates included) references it.
  // Everything else is answered as if the object did not exist.
  bool lfs_visible(const Caller& c, const RepoInfo& r, const std::string& sha256);
  void grant_lfs(const RepoInfo& r, const std::string& sha256, const std::string& user) {
    meta_->grant_lfs(r.id, sha256, user);
  }

  // commit() on behalf of an HTTP caller: every lfsFile must be lfs_visible to `c` (BadRequest "LFS
  // object ... not found for this repository; upload it first" otherwise, exactly as for an
  // object never uploaded). Write access is the caller's concern.
  CommitInfo commit(const Caller& c, const RepoInfo& r, const std::string& branch,
                    const std::string& summary, const std::string& description,
                    const std::string& parent_commit, const std::vector<CommitOp>& ops);
  // Applies ops on top of `branch` as `author`, trusted: no LFS scoping (tests, imports; the
  // server uses the Caller overload above). Write access is the caller's concern.
  // revision_not_found for an unknown branch, PreconditionFailed when parent_commit is not the tip,
  // entry_not_found when deleting a missing file, BadRequest for unknown LFS objects or bad paths.
  CommitInfo commit(const std::string& author, const RepoInfo& r, const std::string& branch,
                    const std::string& summary, const std::string& description,
                    const std::string& parent_commit, const std::vector<CommitOp>& ops);
  // "lfs" or "regular" for a file about to be uploaded.
  std::string upload_mode(const RepoInfo& r, const std::string& commit, const std::string& path,
                          uint64_t size, std::string_view sample);

  void create_branch(const RepoInfo& r, const std::string& name, const std::string& starting_point);
  // A branch the Hub itself maintains, named refs/convert/<name> (the dataset viewer's
  // refs/convert/parquet), at `commit`; nothing when it exists. Clients cannot create, commit to
  // or delete these over HTTP (Forbidden); they read them like any branch.
  void ensure_convert_branch(const RepoInfo& r, const std::string& name, const std::string& commit);
  static bool is_convert_ref(std::string_view name) { return name.starts_with("refs/convert/"); }

  // Called after every accepted commit (any branch, any author, outside the commit lock), in
  // registration order. Hooks must be quick (queue work for a thread of their own) and must not
  // throw; register them before serving.
  using CommitHook =
      std::function<void(const RepoInfo& r, const std::string& branch, const CommitInfo& c)>;
  void add_commit_hook(CommitHook h) { commit_hooks_.push_back(std::move(h)); }
  void delete_branch(const RepoInfo& r, const std::string& name);
  void create_tag(const RepoInfo& r, const std::string& tag, const std::string& rev,
                  const std::string& message);
  void delete_tag(const RepoInfo& r, const std::string& tag);

  // Commits reachable from `commit` through first parents, newest first.
  std::vector<CommitInfo> history(const RepoInfo& r, const std::string& commit, size_t max);
  // The newest commit at or before `commit` that changed `path` (a file or a folder prefix).
  std::optional<CommitInfo> last_change(const RepoInfo& r, const std::string& commit,
                                        const std::string& path);
  // cardData of README.md at `commit` ({} when absent or malformed).
  nlohmann::json card(const RepoInfo& r, const std::string& commit);

  // Signing policy (set once, before serving) and the signature status of a commit (cached:
  // commits are immutable). A commit() to a model repo under require_signed whose tree does not
  // verify throws Forbidden with the reason.
  void set_signing_policy(SigningPolicy p) { signing_ = std::move(p); }
  const SigningPolicy& signing_policy() const { return signing_; }
  SignatureStatus signature_status(const RepoInfo& r, const std::string& commit);

  // Whether a GET of this file counts as one download (the Hub's query-file rule).
  static bool counts_as_download(RepoType t, const std::string& path);
  void count_download(const RepoInfo& r) { meta_->add_downloads(r.id, 1); }

 private:
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<MetadataStore> meta_;
  std::mutex commit_mu_;
  std::vector<CommitHook> commit_hooks_;
  CommitInfo commit_locked(const std::string& author, const RepoInfo& r, const std::string& branch,
                           const std::string& summary, const std::string& description,
                           const std::string& parent_commit, const std::vector<CommitOp>& ops);
  std::mutex session_mu_;
  struct SessionRec {
    std::string csrf, token_sha256;
    int64_t expires_ms = 0;
  };
  std::map<std::string, SessionRec> sessions_;  // by sha256(session id)
  Caller caller_for(const TokenInfo& t);
  SigningPolicy signing_;
  std::mutex sig_mu_;
  std::map<std::string, SignatureStatus> sig_cache_;  // by repo id + commit
  SignatureStatus check_signature(const std::vector<FileEntry>& files);
};

// Creates `dir` (and parents) if needed and makes it owner-only (0700), whatever the umask.
void make_private_dir(const std::string& dir);

std::string iso_date(int64_t ms);  // 2024-05-01T12:34:56.000Z
int64_t now_ms();                  // milliseconds since the Unix epoch

}  // namespace ohm::hub
