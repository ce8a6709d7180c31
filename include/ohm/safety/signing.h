// Model signing in the OpenSSF model-signing format (the PyPI `model_signing` package, v1.0
// predicate), key-based: a Sigstore bundle (v0.3 media type, public-key hint, no transparency-log
// entries) holding a DSSE envelope over an in-toto Statement v1. Its one subject is the model
// directory's name with the SHA-256 over the per-file digests (in canonical path order); the
// predicate lists every file as {name, algorithm: sha256, digest} and the serialization
// parameters (method "files", hash_type, allow_symlinks, ignore_paths). The DSSE signature is
// ECDSA over the PAE of the payload with a P-256 / P-384 / P-521 key (SHA-256 / 384 / 512).
//
//   ohm::safety::sign_model("llama-dir", "key.pem");             // writes llama-dir/model.sig
//   auto r = ohm::safety::verify_model("llama-dir", "pub.pem");  // throws SignatureError
//
// Files model_signing ignores are ignored here too: .git, .gitattributes, .github, .gitignore
// and the signature file (ignore_paths are relative to the model directory and match whole
// path components). docs/safety.md describes the threat model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ohm/core/error.h"

namespace ohm::safety {

// A signature that does not verify: a tampered, added, removed or renamed file, the wrong key,
// a malformed signature file. what() names the cause and the files.
class SignatureError : public Error {
 public:
  SignatureError(const ErrorContext& ctx, const std::string& what)
      : Error(ErrorKind::Invalid, ctx, what) {}
  explicit SignatureError(const std::string& what) : SignatureError(ErrorContext(), what) {}
};

struct ManifestFile {
  std::string name;    // path relative to the model directory, '/'-separated
  std::string sha256;  // lowercase hex
};

struct Manifest {
  std::string model_name;           // the directory's name (the in-toto subject)
  std::vector<ManifestFile> files;  // in canonical order (path components compared bytewise)
  std::vector<std::string> ignore_paths;
  bool allow_symlinks = false;
  // SHA-256 over the concatenated raw file digests, in order (the subject digest).
  std::string root_digest() const;
};

// The ignore list model_signing uses by default, plus `signature_name` (relative to the model
// directory).
std::vector<std::string> default_ignore_paths(const std::string& signature_name = "model.sig");

// Hashes every regular file under `dir` (except ignore_paths). A symbolic link is hashed as the
// file it points to when allow_symlinks; otherwise it is an error naming it (as model_signing).
// `threads` files are hashed at once (0: all cores).
Manifest hash_model_dir(const std::string& dir, const std::vector<std::string>& ignore_paths,
                        bool allow_symlinks = false, int threads = 0);

// Sorts files into the canonical order (as Python sorts pathlib paths: by components).
void canonical_sort(std::vector<ManifestFile>& files);

struct SignOptions {
  std::string signature_path;  // default: DIR/model.sig
  bool allow_symlinks = false;
  std::vector<std::string> extra_ignore;  // more paths relative to DIR
  int threads = 0;
};

struct SignResult {
  std::string signature_path;
  std::string key_fingerprint;  // SHA-256 of the public key's PEM (the bundle's key hint)
  Manifest manifest;
};

// Signs the directory with the PEM private key (EC P-256/384/521) and writes the bundle
// (through a temporary file and a rename). InvalidArgument for a bad key file.
SignResult sign_model(const std::string& dir, const std::string& private_key_pem,
                      const SignOptions& opts = {});

// A signature's verified content: the key checked, the DSSE signature valid, the statement
// well-formed and its root digest consistent with its resources.
struct SignedManifest {
  std::string key_fingerprint;
  Manifest manifest;
};

// Verifies the bundle bytes (`where` names it in errors) against the PEM public key file's
// contents: no file is read. SignatureError for the wrong key, a bad signature or statement.
SignedManifest verify_signature(const std::string& bundle_json, const std::string& public_key_pem,
                                const std::string& where = "model.sig");

// Compares the signed manifest with an actual one: SignatureError naming extra, missing and
// changed files (a renamed file shows as one missing and one extra).
void compare_manifests(const Manifest& signed_manifest, const Manifest& actual,
                       const std::string& dir);

struct VerifyResult {
  std::string key_fingerprint;
  std::string signature_path;
  size_t files = 0;
};

// verify_signature + hash_model_dir (with the signature's ignore_paths and the signature file)
// + compare_manifests. Symbolic links to files are followed (an HF cache snapshot is made of
// them; a link's content must still match its signed digest).
VerifyResult verify_model(const std::string& dir, const std::string& public_key_pem_path,
                          const std::string& signature_path = "", int threads = 0);

// SHA-256 of the public key's SubjectPublicKeyInfo PEM (model_signing's key hint), from a PEM
// public or private key file's contents.
std::string key_fingerprint(const std::string& pem);

// Writes a new EC P-256 key pair (PEM: private 0600, public). For tests and `ohm keygen`-style
// set-up; InvalidArgument when a file exists.
void generate_ec_key(const std::string& private_path, const std::string& public_path);

// The directory whose signature covers a model argument: the directory itself, or a model
// file's directory.
std::string signed_dir_of(const std::string& model_path);

}  // namespace ohm::safety
