#include "sqlite_db.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ohm::hub::sqlite {

const char* const kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, fullname TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',
  is_org INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members (
  org TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (org, user));
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY, user TEXT NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS repos (
  id INTEGER PRIMARY KEY AUTOINCREMENT, type INTEGER NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
  private INTEGER NOT NULL DEFAULT 0, gated TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL,
  downloads INTEGER NOT NULL DEFAULT 0, likes INTEGER NOT NULL DEFAULT 0,
  card_json TEXT NOT NULL DEFAULT '{}', tags_json TEXT NOT NULL DEFAULT '[]',
  pipeline_tag TEXT NOT NULL DEFAULT '', library_name TEXT NOT NULL DEFAULT '',
  UNIQUE (type, ns, name));
CREATE TABLE IF NOT EXISTS commits (
  repo INTEGER NOT NULL, id TEXT NOT NULL, parent TEXT NOT NULL, title TEXT NOT NULL,
  message TEXT NOT NULL, author TEXT NOT NULL, date_ms INTEGER NOT NULL, PRIMARY KEY (repo, id));
CREATE TABLE IF NOT EXISTS files (
  repo INTEGER NOT NULL, commit_id TEXT NOT NULL, path TEXT NOT NULL, oid TEXT NOT NULL,
  size INTEGER NOT NULL, lfs_sha256 TEXT, lfs_size INTEGER, pointer_size INTEGER,
  PRIMARY KEY (repo, commit_id, path));
CREATE TABLE IF NOT EXISTS refs (
  repo INTEGER NOT NULL, name TEXT NOT NULL, is_tag INTEGER NOT NULL, commit_id TEXT NOT NULL,
  message TEXT NOT NULL DEFAULT '', PRIMARY KEY (repo, is_tag, name));
CREATE TABLE IF NOT EXISTS likes (
  repo INTEGER NOT NULL, user TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (repo, user));
CREATE INDEX IF NOT EXISTS likes_by_user ON likes(user);
CREATE TABLE IF NOT EXISTS access_requests (
  repo INTEGER NOT NULL, user TEXT NOT NULL, status TEXT NOT NULL,
  fields_json TEXT NOT NULL DEFAULT '{}', created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
  PRIMARY KEY (repo, user));
CREATE TABLE IF NOT EXISTS lfs_grants (
  repo INTEGER NOT NULL, oid TEXT NOT NULL, user TEXT NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (repo, oid));
CREATE INDEX IF NOT EXISTS files_by_lfs ON files(lfs_sha256) WHERE lfs_sha256 IS NOT NULL;
)SQL";

void make_private_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    throw IoError(ErrorContext().file(path),
                  std::string("cannot create metadata database: ") + std::strerror(errno));
  ::fchmod(fd, 0600);
  ::close(fd);
  for (const char* suffix : {"-wal", "-shm"}) ::chmod((path + suffix).c_str(), 0600);
}

}  // namespace ohm::hub::sqlite
