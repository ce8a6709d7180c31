// SQLite plumbing of the metadata store: the schema, the database file's mode and a prepared
// statement wrapper. Private to src/hub.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "ohm/core/error.h"

namespace ohm::hub::sqlite {

// CREATE TABLE/INDEX IF NOT EXISTS for every table (columns added later are migrated by the
// store when it opens a database).
extern const char* const kSchema;

// Creates the database file (and its WAL/SHM companions, when present) owner-only, whatever the
// umask: SQLite gives the companions the main file's mode.
void make_private_file(const std::string& path);

// A prepared statement: bind, step (InvalidArgument on a constraint violation, IoError on other
// failures), read columns, reset.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      throw IoError(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_CONSTRAINT)
      throw InvalidArgument(std::string("already exists: ") + sqlite3_errmsg(db_));
    throw IoError(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  std::string text(int i) {
    auto p = sqlite3_column_text(s_, i);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(s_, i)))
             : std::string();
  }
  int64_t i64(int i) { return sqlite3_column_int64(s_, i); }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  bool is_null(int i) { return sqlite3_column_type(s_, i) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

}  // namespace ohm::hub::sqlite
