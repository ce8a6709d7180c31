#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include <utility>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/hub/card.h"
#include "ohm/hub/metadata.h"
#include "sqlite_db.h"

namespace ohm::hub {

namespace {

using sqlite::kSchema;
using sqlite::make_private_file;
using sqlite::Stmt;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class SqliteMetadata : public MetadataStore {
 public:
  explicit SqliteMetadata(const std::string& path) {
    make_private_file(path);
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw IoError(ErrorContext().file(path), "cannot open metadata database: " + msg);
    }
    sqlite3_busy_timeout(db_, 10000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
    exec(kSchema);
    // Columns added after the first release (existing data dirs are migrated in place).
    if (!has_column("users", "is_admin"))
      exec("ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0");
    if (!has_column("tokens", "last_used_ms"))
      exec("ALTER TABLE tokens ADD COLUMN last_used_ms INTEGER NOT NULL DEFAULT 0");
    if (!has_column("repos", "eval_json")) {
      exec("ALTER TABLE repos ADD COLUMN eval_json TEXT NOT NULL DEFAULT '[]'");
      // the evaluation results of cards committed before the column existed
      std::vector<std::pair<int64_t, std::string>> cards;
      {
        Stmt s(db_,
               "SELECT id, card_json FROM repos WHERE type = ? AND card_json LIKE "
               "'%model-index%'");
        s.bind(1, static_cast<int64_t>(RepoType::Model));
        while (s.step()) cards.emplace_back(s.i64(0), s.text(1));
      }
      for (auto& [id, text] : cards) {
        Stmt u(db_, "UPDATE repos SET eval_json = ? WHERE id = ?");
        u.bind(1, eval_results_from_card(nlohmann::json::parse(text, nullptr, false)).dump())
            .bind(2, id);
        u.step();
      }
    }
  }

  bool has_column(const char* table, const char* col) {
    Stmt s(
        db_,
        (std::string("SELECT 1 FROM pragma_table_info('") + table + "') WHERE name = ?").c_str());
    s.bind(1, std::string(col));
    return s.step();
  }
  ~SqliteMetadata() override { sqlite3_close(db_); }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      throw IoError("sqlite: " + m);
    }
  }

  struct Tx {
    SqliteMetadata& m;
    bool done = false;
    explicit Tx(SqliteMetadata& mm) : m(mm) { m.exec("BEGIN IMMEDIATE"); }
    void commit() {
      m.exec("COMMIT");
      done = true;
    }
    ~Tx() {
      if (!done) sqlite3_exec(m.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  };

  void create_user(const UserInfo& u) override {
    std::lock_guard l(mu_);
    Stmt s(db_,
           "INSERT INTO users(name, fullname, email, is_org, created_ms, is_admin) VALUES "
           "(?,?,?,?,?,?)");
    s.bind(1, u.name)
        .bind(2, u.fullname)
        .bind(3, u.email)
        .bind(4, int64_t(u.is_org))
        .bind(5, now_ms())
        .bind(6, int64_t(u.is_admin && !u.is_org));
    s.step();
  }
  static constexpr const char* kUserCols = "name, fullname, email, is_org, created_ms, is_admin";
  static UserInfo user_row(Stmt& s) {
    return UserInfo{s.text(0), s.text(1), s.text(2), s.i64(3) != 0, s.i64(4), s.i64(5) != 0};
  }
  std::optional<UserInfo> get_user(const std::string& name) override {
    std::lock_guard l(mu_);
    Stmt s(db_, (std::string("SELECT ") + kUserCols + " FROM users WHERE name = ?").c_str());
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return user_row(s);
  }
  std::vector<UserInfo> list_users() override {
    std::lock_guard l(mu_);
    Stmt s(db_, (std::string("SELECT ") + kUserCols + " FROM users ORDER BY name").c_str());
    std::vector<UserInfo> out;
    while (s.step()) out.push_back(user_row(s));
    return out;
  }
  bool delete_user(const std::string& name) override {
    std::lock_guard l(mu_);
    Tx tx(*this);
    {
      Stmt s(db_,
             "UPDATE repos SET likes = likes - 1 WHERE id IN (SELECT repo FROM likes WHERE user = "
             "?)");
      s.bind(1, name);
      s.step();
    }
    for (const char* sql :
         {"DELETE FROM likes WHERE user = ?", "DELETE FROM access_requests WHERE user = ?",
          "DELETE FROM tokens WHERE user = ?", "DELETE FROM members WHERE user = ? OR org = ?",
          "DELETE FROM users WHERE name = ?"}) {
      Stmt s(db_, sql);
      s.bind(1, name);
      if (std::strstr(sql, "org = ?")) s.bind(2, name);
      s.step();
    }
    const bool any = sqlite3_changes(db_) > 0;
    tx.commit();
    return any;
  }
  void set_admin(const std::string& name, bool admin) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "UPDATE users SET is_admin = ? WHERE name = ? AND is_org = 0");
    s.bind(1, int64_t(admin)).bind(2, name);
    s.step();
  }
  void add_member(const std::string& org, const std::string& user) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "INSERT OR IGNORE INTO members(org, user) VALUES (?,?)");
    s.bind(1, org).bind(2, user);
    s.step();
  }
  std::vector<std::string> orgs_of(const std::string& user) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "SELECT org FROM members WHERE user = ? ORDER BY org");
    s.bind(1, user);
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  }
  void add_token(const std::string& hash, const TokenInfo& t) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "INSERT INTO tokens(hash, user, scope, name, created_ms) VALUES (?,?,?,?,?)");
    s.bind(1, hash).bind(2, t.user).bind(3, t.scope).bind(4, t.name).bind(5, now_ms());
    s.step();
  }
  static constexpr const char* kTokenCols = "user, scope, name, rowid, created_ms, last_used_ms";
  static TokenInfo token_row(Stmt& s) {
    return TokenInfo{s.text(0), s.text(1), s.text(2), s.i64(3), s.i64(4), s.i64(5)};
  }
  std::optional<TokenInfo> find_token(const std::string& hash) override {
    std::lock_guard l(mu_);
    Stmt s(db_, (std::string("SELECT ") + kTokenCols + " FROM tokens WHERE hash = ?").c_str());
    s.bind(1, hash);
    if (!s.step()) return std::nullopt;
    return token_row(s);
  }
  std::vector<TokenInfo> list_tokens(const std::string& user) override {
    std::lock_guard l(mu_);
    Stmt s(db_, (std::string("SELECT ") + kTokenCols +
                 " FROM tokens WHERE ? = '' OR user = ? ORDER BY rowid")
                    .c_str());
    s.bind(1, user).bind(2, user);
    std::vector<TokenInfo> out;
    while (s.step()) out.push_back(token_row(s));
    return out;
  }
  bool delete_token(int64_t id) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "DELETE FROM tokens WHERE rowid = ?");
    s.bind(1, id);
    s.step();
    return sqlite3_changes(db_) > 0;
  }
  void touch_token(int64_t id, int64_t ms) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "UPDATE tokens SET last_used_ms = ? WHERE rowid = ?");
    s.bind(1, ms).bind(2, id);
    s.step();
  }

  static constexpr const char* kRepoCols =
      "id, type, ns, name, private, gated, created_ms, modified_ms, downloads, likes, card_json, "
      "tags_json, pipeline_tag, library_name, eval_json";
  static RepoInfo repo_row(Stmt& s) {
    RepoInfo r;
    r.id = s.i64(0);
    r.type = static_cast<RepoType>(s.i64(1));
    r.ns = s.text(2);
    r.name = s.text(3);
    r.is_private = s.i64(4) != 0;
    r.gated = s.text(5);
    r.created_ms = s.i64(6);
    r.modified_ms = s.i64(7);
    r.downloads = s.i64(8);
    r.likes = s.i64(9);
    r.card_json = s.text(10);
    r.tags_json = s.text(11);
    r.pipeline_tag = s.text(12);
    r.library_name = s.text(13);
    r.eval_json = s.text(14);
    return r;
  }

  RepoInfo create_repo(const RepoInfo& r) override {
    std::lock_guard l(mu_);
    RepoInfo out = r;
    out.created_ms = out.modified_ms = now_ms();
    Stmt s(db_,
           "INSERT INTO repos(type, ns, name, private, gated, created_ms, modified_ms) VALUES "
           "(?,?,?,?,?,?,?)");
    s.bind(1, int64_t(r.type)).bind(2, r.ns).bind(3, r.name).bind(4, int64_t(r.is_private));
    s.bind(5, r.gated).bind(6, out.created_ms).bind(7, out.modified_ms);
    s.step();
    out.id = sqlite3_last_insert_rowid(db_);
    return out;
  }
  std::optional<RepoInfo> get_repo(RepoType t, const std::string& ns,
                                   const std::string& name) override {
    std::lock_guard l(mu_);
    Stmt s(db_, (std::string("SELECT ") + kRepoCols +
                 " FROM repos WHERE type = ? AND ns = ? COLLATE NOCASE AND name = ? COLLATE NOCASE")
                    .c_str());
    s.bind(1, int64_t(t)).bind(2, ns).bind(3, name);
    if (!s.step()) return std::nullopt;
    return repo_row(s);
  }
  std::optional<RepoInfo> get_repo_by_id(int64_t repo) override {
    std::lock_guard l(mu_);
    Stmt s(db_, (std::string("SELECT ") + kRepoCols + " FROM repos WHERE id = ?").c_str());
    s.bind(1, repo);
    if (!s.step()) return std::nullopt;
    return repo_row(s);
  }
  bool delete_repo(int64_t repo) override {
    std::lock_guard l(mu_);
    Tx tx(*this);
    for (const char* sql :
         {"DELETE FROM files WHERE repo = ?", "DELETE FROM lfs_grants WHERE repo = ?",
          "DELETE FROM commits WHERE repo = ?", "DELETE FROM refs WHERE repo = ?",
          "DELETE FROM likes WHERE repo = ?", "DELETE FROM access_requests WHERE repo = ?",
          "DELETE FROM repos WHERE id = ?"}) {
      Stmt s(db_, sql);
      s.bind(1, repo);
      s.step();
    }
    const bool any = sqlite3_changes(db_) > 0;
    tx.commit();
    return any;
  }
  std::vector<RepoInfo> list_repos(RepoType t) override {
    std::lock_guard l(mu_);
    Stmt s(db_,
           (std::string("SELECT ") + kRepoCols + " FROM repos WHERE type = ? ORDER BY id").c_str());
    s.bind(1, int64_t(t));
    std::vector<RepoInfo> out;
    while (s.step()) out.push_back(repo_row(s));
    return out;
  }
  void update_repo_settings(int64_t repo, bool is_private, const std::string& gated) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "UPDATE repos SET private = ?, gated = ? WHERE id = ?");
    s.bind(1, int64_t(is_private)).bind(2, gated).bind(3, repo);
    s.step();
  }
  void update_repo_card(int64_t repo, const std::string& card_json, const std::string& tags_json,
                        const std::string& pipeline_tag, const std::string& library_name,
                        const std::string& eval_json) override {
    std::lock_guard l(mu_);
    Stmt s(db_,
           "UPDATE repos SET card_json = ?, tags_json = ?, pipeline_tag = ?, library_name = ?, "
           "eval_json = ? WHERE id = ?");
    s.bind(1, card_json)
        .bind(2, tags_json)
        .bind(3, pipeline_tag)
        .bind(4, library_name)
        .bind(5, eval_json)
        .bind(6, repo);
    s.step();
  }
  void add_downloads(int64_t repo, int64_t n) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "UPDATE repos SET downloads = downloads + ? WHERE id = ?");
    s.bind(1, n).bind(2, repo);
    s.step();
  }

  bool set_like(int64_t repo, const std::string& user, bool like) override {
    std::lock_guard l(mu_);
    Tx tx(*this);
    {
      Stmt s(db_, like ? "INSERT OR IGNORE INTO likes(repo, user, created_ms) VALUES (?,?,?)"
                       : "DELETE FROM likes WHERE repo = ? AND user = ?");
      s.bind(1, repo).bind(2, user);
      if (like) s.bind(3, now_ms());
      s.step();
    }
    const bool changed = sqlite3_changes(db_) > 0;
    if (changed) {
      Stmt s(db_, "UPDATE repos SET likes = likes + ? WHERE id = ?");
      s.bind(1, int64_t(like ? 1 : -1)).bind(2, repo);
      s.step();
    }
    tx.commit();
    return changed;
  }
  std::vector<LikeInfo> likes_of(const std::string& user) override {
    std::lock_guard l(mu_);
    Stmt s(db_,
           "SELECT r.type, r.ns, r.name, l.created_ms FROM likes l JOIN repos r ON r.id = l.repo "
           "WHERE l.user = ? ORDER BY l.created_ms DESC, r.id DESC");
    s.bind(1, user);
    std::vector<LikeInfo> out;
    while (s.step())
      out.push_back(LikeInfo{static_cast<RepoType>(s.i64(0)), s.text(1), s.text(2), s.i64(3)});
    return out;
  }
  std::vector<std::pair<std::string, int64_t>> likers(int64_t repo) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "SELECT user, created_ms FROM likes WHERE repo = ? ORDER BY created_ms, user");
    s.bind(1, repo);
    std::vector<std::pair<std::string, int64_t>> out;
    while (s.step()) out.emplace_back(s.text(0), s.i64(1));
    return out;
  }

  std::optional<AccessRequest> get_access(int64_t repo, const std::string& user) override {
    std::lock_guard l(mu_);
    Stmt s(db_,
           "SELECT user, status, fields_json, created_ms, updated_ms FROM access_requests WHERE "
           "repo = ? AND user = ?");
    s.bind(1, repo).bind(2, user);
    if (!s.step()) return std::nullopt;
    return AccessRequest{s.text(0), s.text(1), s.text(2), s.i64(3), s.i64(4)};
  }
  void set_access(int64_t repo, const AccessRequest& a) override {
    std::lock_guard l(mu_);
    const int64_t now = now_ms();
    Stmt s(db_,
           "INSERT INTO access_requests(repo, user, status, fields_json, created_ms, updated_ms) "
           "VALUES (?,?,?,?,?,?) ON CONFLICT(repo, user) DO UPDATE SET status = excluded.status, "
           "fields_json = excluded.fields_json, updated_ms = excluded.updated_ms");
    s.bind(1, repo).bind(2, a.user).bind(3, a.status).bind(4, a.fields_json);
    s.bind(5, a.created_ms ? a.created_ms : now).bind(6, now);
    s.step();
  }
  std::vector<AccessRequest> access_requests(int64_t repo, const std::string& status) override {
    std::lock_guard l(mu_);
    Stmt s(db_,
           "SELECT user, status, fields_json, created_ms, updated_ms FROM access_requests WHERE "
           "repo = ? AND status = ? ORDER BY created_ms, user");
    s.bind(1, repo).bind(2, status);
    std::vector<AccessRequest> out;
    while (s.step())
      out.push_back(AccessRequest{s.text(0), s.text(1), s.text(2), s.i64(3), s.i64(4)});
    return out;
  }

  std::optional<std::string> branch_tip(int64_t repo, const std::string& branch) {
    Stmt s(db_, "SELECT commit_id FROM refs WHERE repo = ? AND is_tag = 0 AND name = ?");
    s.bind(1, repo).bind(2, branch);
    if (!s.step()) return std::nullopt;
    return s.text(0);
  }

  void commit(int64_t repo, const std::string& branch, const std::string& expected_parent,
              const CommitInfo& c, const std::vector<FileEntry>& files) override {
    std::lock_guard l(mu_);
    Tx tx(*this);
    auto tip = branch_tip(repo, branch);
    if (tip.value_or("") != expected_parent) throw CommitConflict();
    {
      Stmt s(db_,
             "INSERT INTO commits(repo, id, parent, title, message, author, date_ms) VALUES "
             "(?,?,?,?,?,?,?)");
      s.bind(1, repo).bind(2, c.id).bind(3, c.parent).bind(4, c.title).bind(5, c.message);
      s.bind(6, c.author).bind(7, c.date_ms);
      s.step();
    }
    {
      Stmt s(db_,
             "INSERT INTO files(repo, commit_id, path, oid, size, lfs_sha256, lfs_size, "
             "pointer_size) VALUES (?,?,?,?,?,?,?,?)");
      for (const auto& f : files) {
        s.reset();
        s.bind(1, repo).bind(2, c.id).bind(3, f.path).bind(4, f.oid).bind(5, int64_t(f.size));
        if (f.lfs) {
          s.bind(6, f.lfs->sha256)
              .bind(7, int64_t(f.lfs->size))
              .bind(8, int64_t(f.lfs->pointer_size));
        } else {
          s.bind_null(6).bind_null(7).bind_null(8);
        }
        s.step();
      }
    }
    {
      Stmt s(db_,
             "INSERT INTO refs(repo, name, is_tag, commit_id) VALUES (?,?,0,?) ON CONFLICT(repo, "
             "is_tag, name) DO UPDATE SET commit_id = excluded.commit_id");
      s.bind(1, repo).bind(2, branch).bind(3, c.id);
      s.step();
    }
    {
      Stmt s(db_, "UPDATE repos SET modified_ms = ? WHERE id = ?");
      s.bind(1, c.date_ms).bind(2, repo);
      s.step();
    }
    tx.commit();
  }

  std::optional<CommitInfo> get_commit(int64_t repo, const std::string& id) override {
    std::lock_guard l(mu_);
    Stmt s(db_,
           "SELECT id, parent, title, message, author, date_ms FROM commits WHERE repo = ? AND id "
           "= ?");
    s.bind(1, repo).bind(2, id);
    if (!s.step()) return std::nullopt;
    return CommitInfo{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.i64(5)};
  }
  std::vector<FileEntry> files(int64_t repo, const std::string& commit) override {
    std::lock_guard l(mu_);
    Stmt s(
        db_,
        "SELECT path, oid, size, lfs_sha256, lfs_size, pointer_size FROM files WHERE repo = ? AND "
        "commit_id = ? ORDER BY path");
    s.bind(1, repo).bind(2, commit);
    std::vector<FileEntry> out;
    while (s.step()) {
      FileEntry f{s.text(0), s.text(1), static_cast<uint64_t>(s.i64(2)), std::nullopt};
      if (!s.is_null(3))
        f.lfs =
            LfsInfo{s.text(3), static_cast<uint64_t>(s.i64(4)), static_cast<uint64_t>(s.i64(5))};
      out.push_back(std::move(f));
    }
    return out;
  }
  std::vector<std::string> commits_with_prefix(int64_t repo, const std::string& prefix) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "SELECT id FROM commits WHERE repo = ? AND substr(id, 1, ?) = ? LIMIT 2");
    s.bind(1, repo).bind(2, int64_t(prefix.size())).bind(3, prefix);
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

  void grant_lfs(int64_t repo, const std::string& sha256, const std::string& user) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "INSERT OR IGNORE INTO lfs_grants(repo, oid, user, created_ms) VALUES (?,?,?,?)");
    s.bind(1, repo).bind(2, sha256).bind(3, user).bind(4, now_ms());
    s.step();
  }
  bool has_lfs_grant(int64_t repo, const std::string& sha256) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "SELECT 1 FROM lfs_grants WHERE repo = ? AND oid = ?");
    s.bind(1, repo).bind(2, sha256);
    return s.step();
  }
  std::vector<int64_t> repos_with_lfs(const std::string& sha256) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "SELECT DISTINCT repo FROM files WHERE lfs_sha256 = ? ORDER BY repo");
    s.bind(1, sha256);
    std::vector<int64_t> out;
    while (s.step()) out.push_back(s.i64(0));
    return out;
  }

  std::vector<RefInfo> refs(int64_t repo) override {
    std::lock_guard l(mu_);
    Stmt s(
        db_,
        "SELECT name, is_tag, commit_id, message FROM refs WHERE repo = ? ORDER BY is_tag, name");
    s.bind(1, repo);
    std::vector<RefInfo> out;
    while (s.step()) out.push_back(RefInfo{s.text(0), s.i64(1) != 0, s.text(2), s.text(3)});
    return out;
  }
  std::optional<RefInfo> get_ref(int64_t repo, const std::string& name, bool is_tag) override {
    std::lock_guard l(mu_);
    Stmt s(db_,
           "SELECT name, is_tag, commit_id, message FROM refs WHERE repo = ? AND is_tag = ? AND "
           "name = ?");
    s.bind(1, repo).bind(2, int64_t(is_tag)).bind(3, name);
    if (!s.step()) return std::nullopt;
    return RefInfo{s.text(0), s.i64(1) != 0, s.text(2), s.text(3)};
  }
  void create_ref(int64_t repo, const RefInfo& r) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "INSERT INTO refs(repo, name, is_tag, commit_id, message) VALUES (?,?,?,?,?)");
    s.bind(1, repo).bind(2, r.name).bind(3, int64_t(r.is_tag)).bind(4, r.commit).bind(5, r.message);
    s.step();
  }
  bool delete_ref(int64_t repo, const std::string& name, bool is_tag) override {
    std::lock_guard l(mu_);
    Stmt s(db_, "DELETE FROM refs WHERE repo = ? AND is_tag = ? AND name = ?");
    s.bind(1, repo).bind(2, int64_t(is_tag)).bind(3, name);
    s.step();
    return sqlite3_changes(db_) > 0;
  }

 private:
  sqlite3* db_ = nullptr;
  std::recursive_mutex mu_;
};

}  // namespace

std::unique_ptr<MetadataStore> open_sqlite_metadata(const std::string& path) {
  return std::make_unique<SqliteMetadata>(path);
}

}  // namespace ohm::hub
