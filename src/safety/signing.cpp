// OpenSSF model-signing bundles (key-based) with OpenSSL: manifests, DSSE, ECDSA. See
// include/ohm/safety/signing.h for the format.
#include "ohm/safety/signing.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "ohm/core/atomic_file.h"

namespace fs = std::filesystem;

namespace ohm::safety {
namespace {

constexpr const char* kBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";
constexpr const char* kPayloadType = "application/vnd.in-toto+json";
constexpr const char* kStatementType = "https://in-toto.io/Statement/v1";
constexpr const char* kPredicateType = "https://model_signing/signature/v1.0";
constexpr const char* kPredicateTypeV01 = "https://model_signing/Digests/v0.1";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

bool unhex(const std::string& h, std::string& out) {
  if (h.size() % 2) return false;
  out.resize(h.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int v = 0;
    for (int k = 0; k < 2; ++k) {
      const char c = h[2 * i + k];
      const int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (x < 0) return false;
      v = v * 16 + x;
    }
    out[i] = static_cast<char>(v);
  }
  return true;
}

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return hex(md, n);
}

std::string b64encode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Strict standard base64 (padding required); false on anything else.
bool b64decode(const std::string& in, std::string& out) {
  if (in.size() % 4) return false;
  for (char c : in)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '='))
      return false;
  out.assign(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') pad = in.size() >= 2 && in[in.size() - 2] == '=' ? 2 : 1;
  out.resize(static_cast<size_t>(n) - pad);
  return true;
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw NotFoundError(ErrorContext().file(path), std::string("cannot read the ") + what);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int no_password(char*, int, int, void*) {
  return -1;
}

// The key's curve: P-256/384/521 only (as model_signing); the digest that goes with it.
const EVP_MD* curve_digest(EVP_PKEY* k, const std::string& where) {
  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
    throw InvalidArgument(ErrorContext().file(where),
                          "not an elliptic-curve key (model signing keys are EC P-256, P-384 or "
                          "P-521)");
  char group[64] = {0};
  size_t len = 0;
  if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len))
    throw InvalidArgument(ErrorContext().file(where), "the EC key has no named curve");
  const std::string g(group);
  if (g == "prime256v1" || g == "P-256" || g == "secp256r1") return EVP_sha256();
  if (g == "secp384r1" || g == "P-384") return EVP_sha384();
  if (g == "secp521r1" || g == "P-521") return EVP_sha512();
  throw InvalidArgument(ErrorContext().file(where),
                        "unsupported curve '" + g + "' (P-256, P-384 or P-521)");
}

Pkey read_private_key(const std::string& pem, const std::string& where) {
  Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey k(PEM_read_bio_PrivateKey(b.get(), nullptr, &no_password, nullptr));
  if (!k) {
    if (pem.find("ENCRYPTED") != std::string::npos)
      throw InvalidArgument(ErrorContext().file(where),
                            "the private key is encrypted; give an unencrypted PEM key");
    throw InvalidArgument(ErrorContext().file(where), "not a PEM private key");
  }
  curve_digest(k.get(), where);
  return k;
}

// A PEM public key, or the public half of a PEM private key.
Pkey read_public_key(const std::string& pem, const std::string& where) {
  Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey k(PEM_read_bio_PUBKEY(b.get(), nullptr, &no_password, nullptr));
  if (!k) {
    Bio b2(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    k.reset(PEM_read_bio_PrivateKey(b2.get(), nullptr, &no_password, nullptr));
  }
  if (!k) throw InvalidArgument(ErrorContext().file(where), "not a PEM public key");
  curve_digest(k.get(), where);
  return k;
}

std::string public_pem(EVP_PKEY* k) {
  Bio b(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(b.get(), k);
  char* p = nullptr;
  const long n = BIO_get_mem_data(b.get(), &p);
  return std::string(p, static_cast<size_t>(n));
}

std::string pae(const std::string& payload) {
  const std::string type = kPayloadType;
  return "DSSEv1 " + std::to_string(type.size()) + " " + type + " " +
         std::to_string(payload.size()) + " " + payload;
}

std::vector<std::string> components(const std::string& p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    const size_t j = std::min(p.find('/', i), p.size());
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool ignored(const std::vector<std::string>& parts,
             const std::vector<std::vector<std::string>>& ignore) {
  for (const auto& ig : ignore)
    if (!ig.empty() && ig.size() <= parts.size() && std::equal(ig.begin(), ig.end(), parts.begin()))
      return true;
  return false;
}

std::string hash_file(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(ErrorContext().file(p.string()), "cannot open for hashing");
  MdCtx ctx(EVP_MD_CTX_new());
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 22);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      ::close(fd);
      throw IoError(ErrorContext().file(p.string()), "read failed while hashing");
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  return hex(md, len);
}

nlohmann::ordered_json statement_json(const Manifest& m) {
  nlohmann::ordered_json res = nlohmann::ordered_json::array();
  for (const auto& f : m.files)
    res.push_back({{"name", f.name}, {"algorithm", "sha256"}, {"digest", f.sha256}});
  nlohmann::ordered_json ser = {{"method", "files"},
                                {"hash_type", "sha256"},
                                {"allow_symlinks", m.allow_symlinks},
                                {"ignore_paths", m.ignore_paths}};
  return {{"_type", kStatementType},
          {"subject", {{{"name", m.model_name}, {"digest", {{"sha256", m.root_digest()}}}}}},
          {"predicateType", kPredicateType},
          {"predicate", {{"serialization", ser}, {"resources", res}}}};
}

}  // namespace

std::string Manifest::root_digest() const {
  std::string raw, b;
  for (const auto& f : files) {
    if (!unhex(f.sha256, b)) throw SignatureError("bad digest for '" + f.name + "'");
    raw += b;
  }
  return sha256_hex(raw);
}

std::vector<std::string> default_ignore_paths(const std::string& signature_name) {
  return {".git", ".gitignore", ".github", signature_name, ".gitattributes"};
}

void canonical_sort(std::vector<ManifestFile>& files) {
  std::sort(files.begin(), files.end(), [](const ManifestFile& a, const ManifestFile& b) {
    return components(a.name) < components(b.name);
  });
}

Manifest hash_model_dir(const std::string& dir, const std::vector<std::string>& ignore_paths,
                        bool allow_symlinks, int threads) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw NotFoundError(ErrorContext().file(dir), "not a model directory");
  std::vector<std::vector<std::string>> ignore;
  for (const auto& p : ignore_paths) ignore.push_back(components(p));
  Manifest m;
  m.model_name = fs::absolute(root).lexically_normal().filename().string();
  if (m.model_name.empty())
    m.model_name = fs::absolute(root).lexically_normal().parent_path().filename().string();
  m.ignore_paths = ignore_paths;
  m.allow_symlinks = allow_symlinks;
  std::vector<fs::path> paths;
  auto opts = allow_symlinks ? fs::directory_options::follow_directory_symlink
                             : fs::directory_options::none;
  for (auto it = fs::recursive_directory_iterator(root, opts), end = fs::end(it); it != end;
       it.increment(ec)) {
    if (ec) throw IoError(ErrorContext().file(dir), "cannot list: " + ec.message());
    const std::string rel = it->path().lexically_relative(root).generic_string();
    if (ignored(components(rel), ignore)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink(ec) && !allow_symlinks)
      throw SignatureError(ErrorContext().file(it->path().string()),
                           "is a symbolic link (sign with --allow-symlinks to follow links)");
    if (it->is_regular_file(ec)) {
      paths.push_back(it->path());
      m.files.push_back({rel, ""});
    }
  }
  const size_t n = paths.size();
  const size_t nt = std::max<size_t>(
      1, std::min<size_t>(n, threads > 0 ? static_cast<size_t>(threads)
                                         : std::max(1u, std::thread::hardware_concurrency())));
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  std::exception_ptr err;
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        m.files[i].sha256 = hash_file(paths[i]);
      } catch (...) {
        std::lock_guard<std::mutex> l(err_mu);
        if (!err) err = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < nt; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (err) std::rethrow_exception(err);
  canonical_sort(m.files);
  return m;
}

SignResult sign_model(const std::string& dir, const std::string& private_key_pem,
                      const SignOptions& opts) {
  const Pkey key = read_private_key(read_file(private_key_pem, "private key"), private_key_pem);
  const EVP_MD* md = curve_digest(key.get(), private_key_pem);
  SignResult r;
  r.signature_path =
      opts.signature_path.empty() ? (fs::path(dir) / "model.sig").string() : opts.signature_path;
  // The signature file is ignored by its path relative to the model directory.
  std::string sig_rel = "model.sig";
  {
    std::error_code ec;
    const fs::path rel = fs::weakly_canonical(r.signature_path, ec)
                             .lexically_relative(fs::weakly_canonical(dir, ec));
    sig_rel = rel.empty() ? "" : rel.generic_string();
  }
  // A signature outside the directory is not part of it (as model_signing drops "../" paths).
  const bool inside = !sig_rel.empty() && sig_rel.rfind("..", 0) != 0;
  std::vector<std::string> ignore = default_ignore_paths(inside ? sig_rel : "model.sig");
  for (const auto& p : opts.extra_ignore) ignore.push_back(p);
  r.manifest = hash_model_dir(dir, ignore, opts.allow_symlinks, opts.threads);
  const std::string payload = statement_json(r.manifest).dump(2);
  const std::string msg = pae(payload);
  MdCtx ctx(EVP_MD_CTX_new());
  size_t siglen = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &siglen,
                     reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) != 1)
    throw InvalidArgument(ErrorContext().file(private_key_pem), "signing failed");
  std::string sig(siglen, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &siglen,
                     reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) != 1)
    throw InvalidArgument(ErrorContext().file(private_key_pem), "signing failed");
  sig.resize(siglen);
  r.key_fingerprint = sha256_hex(public_pem(key.get()));
  nlohmann::ordered_json bundle = {
      {"mediaType", kBundleMediaType},
      {"verificationMaterial",
       {{"publicKey", {{"hint", r.key_fingerprint}}}, {"tlogEntries", nlohmann::json::array()}}},
      {"dsseEnvelope",
       {{"payload", b64encode(payload)},
        {"payloadType", kPayloadType},
        {"signatures", {{{"sig", b64encode(sig)}, {"keyid", ""}}}}}}};
  write_file_atomic(r.signature_path, bundle.dump());
  return r;
}

std::string key_fingerprint(const std::string& pem) {
  const Pkey k = read_public_key(pem, "key");
  return sha256_hex(public_pem(k.get()));
}

SignedManifest verify_signature(const std::string& bundle_json, const std::string& public_key_pem,
                                const std::string& where) {
  const ErrorContext at = ErrorContext().file(where);
  nlohmann::json b;
  try {
    b = nlohmann::json::parse(bundle_json);
  } catch (const std::exception& e) {
    throw SignatureError(at, std::string("not a signature bundle (not JSON: ") + e.what() + ")");
  }
  auto str_at = [&](const nlohmann::json& j, const char* k, const std::string& path) {
    if (!j.is_object() || !j.contains(k) || !j[k].is_string())
      throw SignatureError(at, "malformed signature bundle: no string field '" + path + "'");
    return j[k].get<std::string>();
  };
  const std::string media = str_at(b, "mediaType", "mediaType");
  if (media.rfind("application/vnd.dev.sigstore.bundle", 0) != 0)
    throw SignatureError(at, "not a Sigstore bundle (mediaType '" + media + "')");
  const nlohmann::json vm = b.value("verificationMaterial", nlohmann::json::object());
  if (!vm.is_object() || (!vm.contains("publicKey") &&
                          (vm.contains("certificate") || vm.contains("x509CertificateChain"))))
    throw SignatureError(at,
                         "signed with a certificate or a Sigstore identity; ohm verifies "
                         "key-based signatures only");
  const Pkey key = read_public_key(public_key_pem, "public key");
  const EVP_MD* md = curve_digest(key.get(), "public key");
  SignedManifest out;
  out.key_fingerprint = sha256_hex(public_pem(key.get()));
  if (vm.contains("publicKey") && vm["publicKey"].is_object() && vm["publicKey"].contains("hint")) {
    const std::string hint = str_at(vm["publicKey"], "hint", "verificationMaterial.publicKey.hint");
    if (!hint.empty() && hint != out.key_fingerprint)
      throw SignatureError(
          at, "wrong key: signed by key " + hint + ", verifying with key " + out.key_fingerprint);
  }
  if (!b.contains("dsseEnvelope") || !b["dsseEnvelope"].is_object())
    throw SignatureError(at, "malformed signature bundle: no 'dsseEnvelope'");
  const nlohmann::json& env = b["dsseEnvelope"];
  if (str_at(env, "payloadType", "dsseEnvelope.payloadType") != kPayloadType)
    throw SignatureError(at, "the DSSE payload is not an in-toto statement");
  std::string payload, sig;
  if (!b64decode(str_at(env, "payload", "dsseEnvelope.payload"), payload))
    throw SignatureError(at, "malformed signature bundle: dsseEnvelope.payload is not base64");
  if (!env.contains("signatures") || !env["signatures"].is_array() || env["signatures"].empty())
    throw SignatureError(at, "malformed signature bundle: no dsseEnvelope.signatures");
  if (!b64decode(str_at(env["signatures"][0], "sig", "dsseEnvelope.signatures[0].sig"), sig))
    throw SignatureError(at, "malformed signature bundle: the signature is not base64");
  const std::string msg = pae(payload);
  MdCtx ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.get()) != 1 ||
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) != 1)
    throw SignatureError(at, "the signature does not verify with key " + out.key_fingerprint +
                                 " (wrong key or a modified signature file)");
  // The statement: authentic from here on, but still checked for shape and consistency.
  nlohmann::json st;
  try {
    st = nlohmann::json::parse(payload);
  } catch (const std::exception& e) {
    throw SignatureError(at, std::string("the signed statement is not JSON: ") + e.what());
  }
  if (str_at(st, "_type", "_type") != kStatementType)
    throw SignatureError(at, "the signed statement is not an in-toto Statement v1");
  const std::string pt = str_at(st, "predicateType", "predicateType");
  if (pt == kPredicateTypeV01)
    throw SignatureError(at, "a model_signing v0.2 signature (predicate " + pt +
                                 "): re-sign with model_signing 1.0 or later");
  if (pt != kPredicateType) throw SignatureError(at, "unknown predicateType '" + pt + "'");
  if (!st.contains("subject") || !st["subject"].is_array() || st["subject"].size() != 1)
    throw SignatureError(at, "the statement must have exactly one subject");
  const nlohmann::json& subj = st["subject"][0];
  Manifest& m = out.manifest;
  m.model_name = str_at(subj, "name", "subject[0].name");
  if (!subj.contains("digest")) throw SignatureError(at, "no subject[0].digest");
  const std::string root = str_at(subj["digest"], "sha256", "subject[0].digest.sha256");
  if (!st.contains("predicate") || !st["predicate"].is_object())
    throw SignatureError(at, "no predicate");
  const nlohmann::json& pred = st["predicate"];
  if (!pred.contains("serialization") || !pred["serialization"].is_object())
    throw SignatureError(at, "no predicate.serialization");
  const nlohmann::json& ser = pred["serialization"];
  const std::string method = str_at(ser, "method", "predicate.serialization.method");
  if (method != "files")
    throw SignatureError(
        at, "serialization method '" + method + "' is not supported (ohm verifies method 'files')");
  const std::string ht = str_at(ser, "hash_type", "predicate.serialization.hash_type");
  if (ht != "sha256")
    throw SignatureError(at, "hash_type '" + ht + "' is not supported (ohm verifies sha256)");
  m.allow_symlinks = ser.value("allow_symlinks", false);
  if (ser.contains("ignore_paths") && ser["ignore_paths"].is_array())
    for (const auto& p : ser["ignore_paths"])
      if (p.is_string()) m.ignore_paths.push_back(p.get<std::string>());
  if (!pred.contains("resources") || !pred["resources"].is_array())
    throw SignatureError(at, "no predicate.resources");
  std::map<std::string, int> seen;
  for (const auto& r : pred["resources"]) {
    ManifestFile f;
    f.name = str_at(r, "name", "predicate.resources[].name");
    if (str_at(r, "algorithm", "predicate.resources[].algorithm") != "sha256")
      throw SignatureError(at, "resource '" + f.name + "' is not hashed with sha256");
    f.sha256 = str_at(r, "digest", "predicate.resources[].digest");
    std::string raw;
    if (f.sha256.size() != 64 || !unhex(f.sha256, raw))
      throw SignatureError(at, "resource '" + f.name + "' has a malformed digest");
    if (seen[f.name]++) throw SignatureError(at, "resource '" + f.name + "' is listed twice");
    m.files.push_back(std::move(f));
  }
  // The root digest goes over the resources in the order they are listed (as model_signing).
  if (m.root_digest() != root)
    throw SignatureError(at, "the statement is inconsistent: its resources hash to " +
                                 m.root_digest() + ", its subject says " + root);
  canonical_sort(m.files);
  return out;
}

void compare_manifests(const Manifest& s, const Manifest& a, const std::string& dir) {
  std::map<std::string, std::string> want, have;
  for (const auto& f : s.files) want[f.name] = f.sha256;
  for (const auto& f : a.files) have[f.name] = f.sha256;
  std::vector<std::string> extra, missing, changed;
  for (const auto& [n, d] : have)
    if (!want.count(n)) extra.push_back(n);
  for (const auto& [n, d] : want) {
    auto it = have.find(n);
    if (it == have.end())
      missing.push_back(n);
    else if (it->second != d)
      changed.push_back(n + " (signed sha256 " + d.substr(0, 12) + "..., now " +
                        it->second.substr(0, 12) + "...)");
  }
  if (extra.empty() && missing.empty() && changed.empty()) return;
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::string msg = "the model does not match its signature:";
  if (!changed.empty()) msg += " modified: " + join(changed) + ";";
  if (!extra.empty()) msg += " not signed (added or renamed): " + join(extra) + ";";
  if (!missing.empty()) msg += " missing (removed or renamed): " + join(missing) + ";";
  msg.pop_back();
  throw SignatureError(ErrorContext().file(dir), msg);
}

VerifyResult verify_model(const std::string& dir, const std::string& public_key_pem_path,
                          const std::string& signature_path, int threads) {
  VerifyResult r;
  r.signature_path =
      signature_path.empty() ? (fs::path(dir) / "model.sig").string() : signature_path;
  std::error_code ec;
  if (!fs::is_regular_file(r.signature_path, ec))
    throw SignatureError(ErrorContext().file(r.signature_path),
                         "no signature file (sign the model with `ohm sign`)");
  const std::string pem = read_file(public_key_pem_path, "public key");
  const SignedManifest sm =
      verify_signature(read_file(r.signature_path, "signature"), pem, r.signature_path);
  std::vector<std::string> ignore = sm.manifest.ignore_paths;
  const fs::path rel =
      fs::weakly_canonical(r.signature_path, ec).lexically_relative(fs::weakly_canonical(dir, ec));
  if (!rel.empty() && rel.generic_string().rfind("..", 0) != 0)
    ignore.push_back(rel.generic_string());
  const Manifest actual = hash_model_dir(dir, ignore, /*allow_symlinks=*/true, threads);
  compare_manifests(sm.manifest, actual, dir);
  r.key_fingerprint = sm.key_fingerprint;
  r.files = actual.files.size();
  return r;
}

void generate_ec_key(const std::string& private_path, const std::string& public_path) {
  std::error_code ec;
  for (const auto& p : {private_path, public_path})
    if (fs::exists(p, ec)) throw InvalidArgument(ErrorContext().file(p), "exists; not overwritten");
  Pkey k(EVP_EC_gen("P-256"));
  if (!k) throw InvalidArgument("EC key generation failed");
  Bio b(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(b.get(), k.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* p = nullptr;
  const long n = BIO_get_mem_data(b.get(), &p);
  const int fd = ::open(private_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw IoError(ErrorContext().file(private_path), "cannot create");
  const bool ok = ::write(fd, p, static_cast<size_t>(n)) == n;
  ::close(fd);
  if (!ok) throw IoError(ErrorContext().file(private_path), "cannot write");
  write_file_atomic(public_path, public_pem(k.get()));
}

std::string signed_dir_of(const std::string& model_path) {
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) return model_path;
  const fs::path parent = fs::path(model_path).parent_path();
  return parent.empty() ? "." : parent.string();
}

}  // namespace ohm::safety
