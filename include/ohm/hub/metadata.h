// Hub metadata: users and organisations, hashed tokens, repos, immutable commits with their full
// file trees, branches and tags. The default implementation is SQLite in WAL mode; every mutation
// is one transaction, so a crash leaves the previous complete state.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ohm/hub/validate.h"

namespace ohm::hub {

struct LfsInfo {
  std::string sha256;
  uint64_t size = 0;
  uint64_t pointer_size = 0;
};

struct FileEntry {
  std::string path;
  std::string oid;    // git blob sha1 (of the pointer file for LFS files)
  uint64_t size = 0;  // real content size
  std::optional<LfsInfo> lfs;
};

struct CommitInfo {
  std::string id;      // 40-hex
  std::string parent;  // empty for the first commit
  std::string title, message, author;
  int64_t date_ms = 0;
};

struct RepoInfo {
  int64_t id = 0;
  RepoType type = RepoType::Model;
  std::string ns, name;
  bool is_private = false;
  std::string gated;  // "", "auto", "manual"
  int64_t created_ms = 0, modified_ms = 0;
  int64_t downloads = 0, likes = 0;
  std::string card_json = "{}";  // cardData of README.md on main
  std::string tags_json = "[]";
  std::string pipeline_tag, library_name;
  // Evaluation results from the card's model-index (card.h eval_results_from_card), a JSON list.
  std::string eval_json = "[]";
  std::string full_id() const { return ns + "/" + name; }
};

struct RefInfo {
  std::string name;
  bool is_tag = false;
  std::string commit;
  std::string message;
};

struct UserInfo {
  std::string name, fullname, email;
  bool is_org = false;
  int64_t created_ms = 0;
  bool is_admin = false;  // may list/revoke tokens and list/delete users (CLI, API, web UI)
};

struct TokenInfo {
  std::string user, scope, name;             // scope: "read" | "write"
  int64_t id = 0;                            // stable row id (the secret itself is never stored)
  int64_t created_ms = 0, last_used_ms = 0;  // last_used_ms: 0 = never (updated at most 1/min)
};

// A like of `user` on a repo (repos.likes counts them).
struct LikeInfo {
  RepoType type = RepoType::Model;
  std::string ns, name;
  int64_t created_ms = 0;
};

// A user's access request to a gated repo.
struct AccessRequest {
  std::string user;
  std::string status;              // "pending" | "accepted" | "rejected"
  std::string fields_json = "{}";  // custom form fields sent with the request
  int64_t created_ms = 0, updated_ms = 0;
};

// Thrown by MetadataStore::commit when the branch moved since `expected_parent`.
struct CommitConflict : std::exception {
  const char* what() const noexcept override { return "branch moved"; }
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Users and organisations. create_user throws InvalidArgument if the name is taken.
  virtual void create_user(const UserInfo& u) = 0;
  virtual std::optional<UserInfo> get_user(const std::string& name) = 0;
  virtual void add_member(const std::string& org, const std::string& user) = 0;
  virtual std::vector<std::string> orgs_of(const std::string& user) = 0;
  virtual void add_token(const std::string& token_sha256, const TokenInfo& t) = 0;
  virtual std::optional<TokenInfo> find_token(const std::string& token_sha256) = 0;

  // Administration. list_users: users and organisations by name. delete_user removes the user,
  // its tokens, memberships, likes (counts kept in step) and access requests in one transaction
  // (the caller checks that it owns no repos). list_tokens: all tokens, or one user's, by id.
  virtual std::vector<UserInfo> list_users() = 0;
  virtual bool delete_user(const std::string& name) = 0;
  virtual void set_admin(const std::string& name, bool admin) = 0;
  virtual std::vector<TokenInfo> list_tokens(const std::string& user) = 0;
  virtual bool delete_token(int64_t id) = 0;
  virtual void touch_token(int64_t id, int64_t ms) = 0;  // last_used_ms

  // Repos. create_repo throws InvalidArgument when it exists; returns it with its id set.
  virtual RepoInfo create_repo(const RepoInfo& r) = 0;
  virtual std::optional<RepoInfo> get_repo(RepoType t, const std::string& ns,
                                           const std::string& name) = 0;
  virtual std::optional<RepoInfo> get_repo_by_id(int64_t repo) = 0;
  virtual bool delete_repo(int64_t repo) = 0;
  virtual std::vector<RepoInfo> list_repos(RepoType t) = 0;
  virtual void update_repo_settings(int64_t repo, bool is_private, const std::string& gated) = 0;
  virtual void update_repo_card(int64_t repo, const std::string& card_json,
                                const std::string& tags_json, const std::string& pipeline_tag,
                                const std::string& library_name, const std::string& eval_json) = 0;
  virtual void add_downloads(int64_t repo, int64_t n) = 0;

  // Likes: at most one per (user, repo); repos.likes is kept in step in the same transaction.
  // Returns whether anything changed.
  virtual bool set_like(int64_t repo, const std::string& user, bool like) = 0;
  virtual std::vector<LikeInfo> likes_of(const std::string& user) = 0;            // newest first
  virtual std::vector<std::pair<std::string, int64_t>> likers(int64_t repo) = 0;  // user, ms

  // Gated-repo access requests, one per (repo, user).
  virtual std::optional<AccessRequest> get_access(int64_t repo, const std::string& user) = 0;
  // Inserts or updates the request's status (created_ms is kept on update).
  virtual void set_access(int64_t repo, const AccessRequest& a) = 0;
  virtual std::vector<AccessRequest> access_requests(int64_t repo, const std::string& status) = 0;

  // Commits: writes the commit, its complete file list and moves `branch` to it, atomically.
  // Throws CommitConflict when the branch tip is not `expected_parent` (empty: branch absent).
  virtual void commit(int64_t repo, const std::string& branch, const std::string& expected_parent,
                      const CommitInfo& c, const std::vector<FileEntry>& files) = 0;
  virtual std::optional<CommitInfo> get_commit(int64_t repo, const std::string& id) = 0;
  virtual std::vector<FileEntry> files(int64_t repo, const std::string& commit) = 0;
  // Commits whose id starts with `prefix` (hex, >= 4 chars).
  virtual std::vector<std::string> commits_with_prefix(int64_t repo, const std::string& prefix) = 0;

  // LFS objects are stored once (deduplicated) but scoped to repos: a repo may reference an oid
  // that was uploaded to it (a grant) or that a repo its committer can read references.
  virtual void grant_lfs(int64_t repo, const std::string& sha256, const std::string& user) = 0;
  virtual bool has_lfs_grant(int64_t repo, const std::string& sha256) = 0;
  // Repos whose history references the LFS object (any commit).
  virtual std::vector<int64_t> repos_with_lfs(const std::string& sha256) = 0;

  // Refs.
  virtual std::vector<RefInfo> refs(int64_t repo) = 0;
  virtual std::optional<RefInfo> get_ref(int64_t repo, const std::string& name, bool is_tag) = 0;
  // Throws InvalidArgument when it exists.
  virtual void create_ref(int64_t repo, const RefInfo& r) = 0;
  virtual bool delete_ref(int64_t repo, const std::string& name, bool is_tag) = 0;
};

// Opens (creating if needed) the SQLite database at `path`.
std::unique_ptr<MetadataStore> open_sqlite_metadata(const std::string& path);

}  // namespace ohm::hub
