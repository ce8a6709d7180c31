#include "ohm/formats/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/formats/json_reader.h"

namespace ohm::safetensors {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::optional<DType> parse_st_dtype(const std::string& s) {
  static const std::map<std::string, DType> m = {
      {"F64", DType::F64},   {"F32", DType::F32},         {"F16", DType::F16},
      {"BF16", DType::BF16}, {"I64", DType::I64},         {"I32", DType::I32},
      {"I16", DType::I16},   {"I8", DType::I8},           {"U64", DType::U64},
      {"U32", DType::U32},   {"U16", DType::U16},         {"U8", DType::U8},
      {"BOOL", DType::Bool}, {"F8_E4M3", DType::F8_E4M3}, {"F8_E5M2", DType::F8_E5M2},
  };
  auto it = m.find(s);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

uint64_t get_uint(const json& v, const ErrorContext& ctx, const char* field) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    throw FormatError(
        ctx, std::string("'") + field + "' must hold non-negative integers, got " + v.dump());
  return v.get<uint64_t>();
}

}  // namespace

Header parse_header(const uint8_t* data, uint64_t size, const std::string& name) {
  const ErrorContext file_ctx = ErrorContext().file(name);
  if (size < 8)
    throw FormatError(file_ctx, "file is " + std::to_string(size) +
                                    " bytes, too short for the 8-byte header length");
  const uint64_t n = read_u64_le(data);
  if (n > kMaxHeaderBytes)
    throw FormatError(file_ctx, "header length " + std::to_string(n) + " exceeds the " +
                                    std::to_string(kMaxHeaderBytes) + "-byte limit");
  if (n > size - 8)
    throw FormatError(file_ctx, "header length " + std::to_string(n) +
                                    " runs past the end of the file (" + std::to_string(size) +
                                    " bytes; truncated?)");
  if (n < 2 || data[8] != '{') throw FormatError(file_ctx, "header does not start with '{'");

  const char* hb = reinterpret_cast<const char*>(data + 8);
  json j = parse_json_text(std::string_view(hb, n), name, "safetensors header");
  if (!j.is_object()) throw FormatError(file_ctx, "header is not a JSON object");

  Header h;
  h.data_offset = 8 + n;
  const uint64_t data_len = size - h.data_offset;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      if (!it->is_object())
        throw FormatError(ErrorContext(file_ctx).key(key), "must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          throw FormatError(ErrorContext(file_ctx).key("__metadata__." + m.key()),
                            "metadata values must be strings, got " + m->dump());
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const ErrorContext ctx = ErrorContext(file_ctx).tensor(key);
    if (key.empty()) throw FormatError(ctx, "empty tensor name");
    const json& e = *it;
    if (!e.is_object()) throw FormatError(ctx, "entry is not an object");
    for (const char* f : {"dtype", "shape", "data_offsets"})
      if (!e.contains(f)) throw FormatError(ctx, std::string("missing field '") + f + "'");
    if (!e["dtype"].is_string()) throw FormatError(ctx, "'dtype' is not a string");
    const std::string dts = e["dtype"].get<std::string>();
    auto dt = parse_st_dtype(dts);
    if (!dt) throw UnsupportedError(ctx, "unsupported dtype '" + dts + "'");
    if (!e["shape"].is_array()) throw FormatError(ctx, "'shape' is not an array");
    if (e["shape"].size() > 16) throw FormatError(ctx, "'shape' has more than 16 dimensions");
    TensorInfo t;
    t.name = key;
    t.dtype = *dt;
    for (const auto& d : e["shape"]) {
      const uint64_t v = get_uint(d, ctx, "shape");
      if (v > static_cast<uint64_t>(INT64_MAX)) throw FormatError(ctx, "dimension too large");
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2)
      throw FormatError(ctx, "'data_offsets' must be [begin, end]");
    t.begin = get_uint(off[0], ctx, "data_offsets");
    t.end = get_uint(off[1], ctx, "data_offsets");
    if (t.begin > t.end)
      throw FormatError(
          ctx, "data_offsets begin " + std::to_string(t.begin) + " > end " + std::to_string(t.end));
    if (t.end > data_len)
      throw FormatError(ctx, "data_offsets [" + std::to_string(t.begin) + ", " +
                                 std::to_string(t.end) + "] run past the end of the data (" +
                                 std::to_string(data_len) + " bytes; truncated file?)");
    auto numel = checked_numel(t.shape);
    auto bytes = numel ? row_bytes(t.dtype, *numel) : std::nullopt;
    if (!bytes) throw FormatError(ErrorContext(ctx).shape("shape", t.shape), "shape overflows");
    if (*bytes != t.nbytes())
      throw FormatError(ErrorContext(ctx).shape("shape", t.shape).note("dtype", dts),
                        "byte size mismatch: shape and dtype need " + std::to_string(*bytes) +
                            " bytes but data_offsets span " + std::to_string(t.nbytes()));
    h.tensors.push_back(std::move(t));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < h.tensors.size(); ++i) {
    const auto& prev = h.tensors[i - 1];
    const auto& cur = h.tensors[i];
    if (cur.begin < prev.end)
      throw FormatError(ErrorContext(file_ctx).tensor(cur.name),
                        "data overlaps tensor '" + prev.name + "' ([" + std::to_string(cur.begin) +
                            ", " + std::to_string(cur.end) + "] vs [" + std::to_string(prev.begin) +
                            ", " + std::to_string(prev.end) + "])");
  }
  return h;
}

// ---- SafetensorsFile -----------------------------------------------------------------------

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  return parse(MappedFile::open(path));
}

SafetensorsFile SafetensorsFile::parse(std::shared_ptr<const MappedFile> file) {
  SafetensorsFile f;
  f.header_ = parse_header(file->data(), file->size(), file->path());
  f.file_ = std::move(file);
  for (size_t i = 0; i < f.header_.tensors.size(); ++i)
    f.index_.emplace(f.header_.tensors[i].name, i);
  return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) throw NotFoundError(ErrorContext().file(path()).tensor(name), "no such tensor");
  auto storage = Storage::map_view(file_, header_.data_offset + t->begin, t->nbytes());
  return Tensor::view(std::move(storage), t->dtype, t->shape, 0);
}

// ---- Checkpoint ----------------------------------------------------------------------------

namespace {

// A shard name from an index must be a plain file name inside the checkpoint directory.
bool is_safe_relative(const std::string& f) {
  if (f.empty() || f.find('\0') != std::string::npos) return false;
  fs::path p(f);
  if (p.is_absolute()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint ck;
  std::string single;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "model.safetensors.index.json"))
      ck.index_path_ = (dir / "model.safetensors.index.json").string();
    else if (fs::exists(dir / "model.safetensors"))
      single = (dir / "model.safetensors").string();
    else {
      // Other names HF writes (e.g. adapter_model.safetensors, consolidated): take a lone file.
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".safetensors") found.push_back(e.path().string());
      if (found.size() == 1) {
        single = found[0];
      } else {
        std::string hint = fs::exists(dir / "pytorch_model.bin") ||
                                   fs::exists(dir / "pytorch_model.bin.index.json")
                               ? " (only PyTorch .bin weights found: convert them to safetensors)"
                               : "";
        throw NotFoundError(ErrorContext().file(path),
                            found.empty()
                                ? "no model.safetensors or model.safetensors.index.json" + hint
                                : "several .safetensors files and no index.json");
      }
    }
  } else if (path.size() >= 5 && path.substr(path.size() - 5) == ".json") {
    ck.index_path_ = path;
  } else {
    single = path;
  }

  if (!single.empty()) {
    ck.shards_.push_back(SafetensorsFile::open(single));
    ck.metadata_ = ck.shards_[0].metadata();
    for (const auto& t : ck.shards_[0].tensors()) ck.tensors_.push_back({t, 0});
  } else {
    json idx = read_json_file(ck.index_path_);
    const ErrorContext ictx = ErrorContext().file(ck.index_path_);
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw FormatError(ErrorContext(ictx).key("weight_map"), "missing or not an object");
    if (idx.contains("metadata") && idx["metadata"].is_object())
      for (auto it = idx["metadata"].begin(); it != idx["metadata"].end(); ++it)
        ck.metadata_[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
    const fs::path dir = fs::path(ck.index_path_).parent_path();
    std::map<std::string, size_t> shard_of_file;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      const ErrorContext tctx = ErrorContext(ictx).key("weight_map").tensor(it.key());
      if (!it->is_string()) throw FormatError(tctx, "shard file name is not a string");
      const std::string file = it->get<std::string>();
      if (!is_safe_relative(file))
        throw FormatError(tctx, "shard file name '" + file + "' is not a relative path inside " +
                                    "the checkpoint directory");
      auto sf = shard_of_file.find(file);
      if (sf == shard_of_file.end()) {
        const fs::path shard_path = dir / file;
        if (!fs::exists(shard_path))
          throw NotFoundError(tctx, "shard file '" + shard_path.string() + "' does not exist");
        ck.shards_.push_back(SafetensorsFile::open(shard_path.string()));
        sf = shard_of_file.emplace(file, ck.shards_.size() - 1).first;
      }
      const TensorInfo* t = ck.shards_[sf->second].find(it.key());
      if (!t)
        throw FormatError(tctx, "the index maps it to '" + file +
                                    "' but that shard has no such "
                                    "tensor");
      ck.tensors_.push_back({*t, sf->second});
    }
  }
  std::sort(ck.tensors_.begin(), ck.tensors_.end(),
            [](const CheckpointTensor& a, const CheckpointTensor& b) {
              return a.info.name < b.info.name;
            });
  for (size_t i = 0; i < ck.tensors_.size(); ++i) ck.by_name_.emplace(ck.tensors_[i].info.name, i);
  return ck;
}

const CheckpointTensor& Checkpoint::info(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end())
    throw NotFoundError(
        ErrorContext()
            .file(index_path_.empty() && !shards_.empty() ? shards_[0].path() : index_path_)
            .tensor(name),
        "no such tensor in the checkpoint");
  return tensors_[it->second];
}

Tensor Checkpoint::tensor(const std::string& name) const {
  const auto& t = info(name);
  return shards_[t.shard].tensor(name);
}

}  // namespace ohm::safetensors
