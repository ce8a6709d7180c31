// map (batched, threaded), the tokenizer map, filter/select/shuffle/split/concatenate, dedup.
#include "ohm/datasets/transforms.h"

#include <arrow/compute/api.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "encode.h"
#include "ohm/core/error.h"
#include "ohm/datasets/dataset.h"

namespace ohm::datasets {

namespace {

void init_compute() {
  static std::once_flag once;
  std::call_once(once, [] { check(arrow::compute::Initialize(), "arrow compute"); });
}

void run_threads(int n, const std::function<void(int, int)>& fn);

class MapReader : public arrow::RecordBatchReader {
 public:
  MapReader(std::shared_ptr<arrow::RecordBatchReader> in, BatchFn fn, const MapOptions& opt)
      : in_(std::move(in)),
        fn_(std::move(fn)),
        opt_(opt),
        threads_(opt.threads > 0
                     ? opt.threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))) {
    fill();
    if (!out_.empty()) {
      schema_ = out_.front()->schema();
    } else {
      // no rows: the schema of fn on an empty batch
      auto empty = value_or_throw(arrow::RecordBatch::MakeEmpty(in_->schema()), "map");
      schema_ = fn_(*empty)->schema();
    }
  }
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* b) override {
    if (out_.empty()) fill();
    if (out_.empty()) {
      b->reset();
      return arrow::Status::OK();
    }
    *b = std::move(out_.front());
    out_.pop_front();
    if (!(*b)->schema()->Equals(*schema_, false)) {
      throw FormatError(ErrorContext().op("map"), "a batch came out with schema " +
                                                      (*b)->schema()->ToString() +
                                                      ", the first with " + schema_->ToString());
    }
    rows_ += (*b)->num_rows();
    if (opt_.progress) opt_.progress(rows_);
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<arrow::RecordBatch> next_slice() {
    const int64_t n = std::max<int64_t>(1, opt_.batch_rows);
    while (!pending_ || off_ >= pending_->num_rows()) {
      if (done_) return nullptr;
      check(in_->ReadNext(&pending_), "map");
      off_ = 0;
      if (!pending_) {
        done_ = true;
        return nullptr;
      }
    }
    auto s = pending_->Slice(off_, n);
    off_ += s->num_rows();
    return s;
  }
  void fill() {
    std::vector<std::shared_ptr<arrow::RecordBatch>> in;
    while (static_cast<int>(in.size()) < threads_) {
      auto s = next_slice();
      if (!s) break;
      in.push_back(std::move(s));
    }
    if (in.empty()) return;
    std::vector<std::shared_ptr<arrow::RecordBatch>> res(in.size());
    run_threads(std::min<int>(threads_, static_cast<int>(in.size())), [&](int i, int n) {
      for (size_t k = static_cast<size_t>(i); k < in.size(); k += static_cast<size_t>(n))
        res[k] = fn_(*in[k]);
    });
    for (auto& r : res) out_.push_back(std::move(r));
  }

  std::shared_ptr<arrow::RecordBatchReader> in_;
  BatchFn fn_;
  MapOptions opt_;
  int threads_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::RecordBatch> pending_;
  int64_t off_ = 0, rows_ = 0;
  bool done_ = false;
  std::deque<std::shared_ptr<arrow::RecordBatch>> out_;
};

template <typename ArrayT>
void encode_rows(const ArrayT& a, const tokenizers::AutoTokenizer& tok, bool special,
                 std::vector<int32_t>& offsets, std::vector<int32_t>& values) {
  std::vector<std::string_view> texts(static_cast<size_t>(a.length()));
  std::vector<bool> has(texts.size());
  for (int64_t i = 0; i < a.length(); ++i) {
    has[static_cast<size_t>(i)] = a.IsValid(i);
    if (a.IsValid(i)) texts[static_cast<size_t>(i)] = a.GetView(i);
  }
  offsets.push_back(0);
  detail::encode_texts(tok, texts, has, special, offsets, values);
}

// Runs fn(i, n) on n threads (the calling one included) and rethrows the first exception.
void run_threads(int n, const std::function<void(int, int)>& fn) {
  std::vector<std::thread> ts;
  std::vector<std::exception_ptr> errs(static_cast<size_t>(n));
  for (int i = 1; i < n; ++i)
    ts.emplace_back([&, i] {
      try {
        fn(i, n);
      } catch (...) {
        errs[static_cast<size_t>(i)] = std::current_exception();
      }
    });
  try {
    fn(0, n);
  } catch (...) {
    errs[0] = std::current_exception();
  }
  for (auto& t : ts) t.join();
  for (auto& e : errs)
    if (e) std::rethrow_exception(e);
}

std::shared_ptr<arrow::Array> list_array(const std::vector<int32_t>& offsets,
                                         const std::shared_ptr<arrow::Array>& values) {
  auto off = std::make_shared<arrow::Int32Array>(static_cast<int64_t>(offsets.size()),
                                                 arrow::Buffer::FromVector(offsets));
  return value_or_throw(arrow::ListArray::FromArrays(*off, *values), "map_tokenize");
}

__extension__ typedef unsigned __int128 u128;

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t hash_bytes(const char* p, size_t n, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001b3ULL;
  return mix64(h);
}

// The text of a string-like cell (null: empty).
std::string_view cell_text(const arrow::Array& a, int64_t i) {
  if (a.IsNull(i)) return {};
  if (a.type_id() == arrow::Type::STRING)
    return static_cast<const arrow::StringArray&>(a).GetView(i);
  if (a.type_id() == arrow::Type::LARGE_STRING)
    return static_cast<const arrow::LargeStringArray&>(a).GetView(i);
  return {};
}

bool is_text_type(const arrow::DataType& t) {
  return t.id() == arrow::Type::STRING || t.id() == arrow::Type::LARGE_STRING;
}

struct UnionFind {
  std::vector<int64_t> p;
  explicit UnionFind(int64_t n) : p(static_cast<size_t>(n)) { std::iota(p.begin(), p.end(), 0); }
  int64_t find(int64_t x) {
    while (p[x] != x) x = p[x] = p[p[x]];
    return x;
  }
  void unite(int64_t a, int64_t b) {
    a = find(a);
    b = find(b);
    if (a != b) p[std::max(a, b)] = std::min(a, b);
  }
};

}  // namespace

std::shared_ptr<arrow::RecordBatchReader> map(std::shared_ptr<arrow::RecordBatchReader> in,
                                              BatchFn fn, const MapOptions& opt) {
  return std::make_shared<MapReader>(std::move(in), std::move(fn), opt);
}

std::shared_ptr<arrow::RecordBatchReader> map_tokenize(std::shared_ptr<arrow::RecordBatchReader> in,
                                                       const tokenizers::AutoTokenizer& tok,
                                                       const TokenizeOptions& topt,
                                                       const MapOptions& opt) {
  const auto schema = in->schema();
  const int col = schema->GetFieldIndex(topt.column);
  if (col < 0) {
    throw InvalidArgument(
        ErrorContext().key(topt.column), "no such column (columns: " + [&] {
          std::string s;
          for (const auto& f : schema->fields()) s += (s.empty() ? "" : ", ") + f->name();
          return s;
        }() + ")");
  }
  if (!is_text_type(*schema->field(col)->type())) {
    throw InvalidArgument(ErrorContext().key(topt.column),
                          "column is " + schema->field(col)->type()->ToString() + ", not a string");
  }
  BatchFn fn = [&tok, topt, col](const arrow::RecordBatch& b) {
    std::vector<int32_t> offsets, values;
    offsets.reserve(static_cast<size_t>(b.num_rows()) + 1);
    const auto& a = *b.column(col);
    if (a.type_id() == arrow::Type::STRING)
      encode_rows(static_cast<const arrow::StringArray&>(a), tok, topt.add_special_tokens, offsets,
                  values);
    else
      encode_rows(static_cast<const arrow::LargeStringArray&>(a), tok, topt.add_special_tokens,
                  offsets, values);
    const size_t n_ids = values.size();
    auto ids = list_array(
        offsets, std::make_shared<arrow::Int32Array>(static_cast<int64_t>(n_ids),
                                                     arrow::Buffer::FromVector(std::move(values))));
    arrow::FieldVector fields;
    arrow::ArrayVector cols;
    if (topt.keep_columns) {
      fields = b.schema()->fields();
      cols = b.columns();
    }
    fields.push_back(arrow::field("input_ids", arrow::list(arrow::int32())));
    cols.push_back(ids);
    if (topt.attention_mask) {
      std::vector<int8_t> ones(n_ids, 1);
      auto mask = list_array(
          offsets, std::make_shared<arrow::Int8Array>(static_cast<int64_t>(n_ids),
                                                      arrow::Buffer::FromVector(std::move(ones))));
      fields.push_back(arrow::field("attention_mask", arrow::list(arrow::int8())));
      cols.push_back(mask);
    }
    return arrow::RecordBatch::Make(arrow::schema(fields), b.num_rows(), cols);
  };
  return map(std::move(in), fn, opt);
}

std::shared_ptr<arrow::Table> filter(
    const std::shared_ptr<arrow::Table>& t,
    const std::function<std::vector<bool>(const arrow::RecordBatch&)>& keep) {
  init_compute();
  arrow::BooleanBuilder bb;
  arrow::TableBatchReader r(*t);
  std::shared_ptr<arrow::RecordBatch> b;
  for (;;) {
    check(r.ReadNext(&b), "filter");
    if (!b) break;
    const auto k = keep(*b);
    if (static_cast<int64_t>(k.size()) != b->num_rows()) {
      throw InvalidArgument(ErrorContext().op("filter"),
                            "the predicate returned " + std::to_string(k.size()) + " values for " +
                                std::to_string(b->num_rows()) + " rows");
    }
    for (bool v : k) check(bb.Append(v), "filter");
  }
  std::shared_ptr<arrow::Array> mask;
  check(bb.Finish(&mask), "filter");
  auto d = value_or_throw(arrow::compute::Filter(t, mask), "filter");
  return d.table();
}

std::shared_ptr<arrow::Table> select(const std::shared_ptr<arrow::Table>& t,
                                     const std::vector<int64_t>& indices) {
  init_compute();
  for (int64_t i : indices)
    if (i < 0 || i >= t->num_rows())
      throw InvalidArgument(ErrorContext().op("select"),
                            "index " + std::to_string(i) + " out of range for " +
                                std::to_string(t->num_rows()) + " rows");
  auto idx = std::make_shared<arrow::Int64Array>(static_cast<int64_t>(indices.size()),
                                                 arrow::Buffer::FromVector(indices));
  auto d = value_or_throw(arrow::compute::Take(t, idx), "select");
  return d.table();
}

std::shared_ptr<arrow::Table> shuffle(const std::shared_ptr<arrow::Table>& t, uint64_t seed) {
  std::vector<int64_t> idx(static_cast<size_t>(t->num_rows()));
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(seed);
  for (size_t i = idx.size(); i > 1; --i) {
    std::uniform_int_distribution<size_t> d(0, i - 1);
    std::swap(idx[i - 1], idx[d(rng)]);
  }
  return select(t, idx);
}

std::pair<std::shared_ptr<arrow::Table>, std::shared_ptr<arrow::Table>> train_test_split(
    const std::shared_ptr<arrow::Table>& t, double test_size, uint64_t seed, bool do_shuffle) {
  const int64_t n = t->num_rows();
  if (!(test_size > 0)) throw InvalidArgument(ErrorContext().key("test_size"), "must be > 0");
  const int64_t n_test = test_size < 1
                             ? static_cast<int64_t>(std::ceil(test_size * static_cast<double>(n)))
                             : static_cast<int64_t>(test_size);
  if (n_test <= 0 || n_test >= n) {
    throw InvalidArgument(ErrorContext().key("test_size"),
                          "leaves an empty split (" + std::to_string(n) + " rows, " +
                              std::to_string(n_test) + " for test)");
  }
  auto s = do_shuffle ? shuffle(t, seed) : t;
  return {s->Slice(0, n - n_test), s->Slice(n - n_test)};
}

std::shared_ptr<arrow::Table> concatenate(
    const std::vector<std::shared_ptr<arrow::Table>>& tables) {
  if (tables.empty()) throw InvalidArgument("concatenate: no tables");
  const auto& a = *tables[0]->schema();
  for (size_t k = 1; k < tables.size(); ++k) {
    const auto& s = *tables[k]->schema();
    if (s.num_fields() != a.num_fields())
      throw FormatError(ErrorContext().op("concatenate"),
                        "table " + std::to_string(k) + " has " + std::to_string(s.num_fields()) +
                            " columns, table 0 " + std::to_string(a.num_fields()));
    for (int i = 0; i < a.num_fields(); ++i)
      if (s.field(i)->name() != a.field(i)->name() ||
          !s.field(i)->type()->Equals(*a.field(i)->type()))
        throw FormatError(ErrorContext().op("concatenate").key(s.field(i)->name()),
                          "table " + std::to_string(k) + " has " + s.field(i)->ToString() +
                              ", table 0 " + a.field(i)->ToString());
  }
  std::vector<std::shared_ptr<arrow::Table>> same;
  for (const auto& t : tables)
    same.push_back(t->ReplaceSchemaMetadata(tables[0]->schema()->metadata()));
  return value_or_throw(arrow::ConcatenateTables(same), "concatenate");
}

std::pair<int, int> lsh_params(double threshold, int num_perm) {
  auto integrate = [](auto f, double a, double b) {
    const int n = 200;
    double s = 0, h = (b - a) / n;
    for (int i = 0; i <= n; ++i) s += f(a + i * h) * ((i == 0 || i == n) ? 0.5 : 1.0);
    return s * h;
  };
  double best = 1e30;
  std::pair<int, int> out{1, num_perm};
  for (int b = 1; b <= num_perm; ++b)
    for (int r = 1; b * r <= num_perm; ++r) {
      const double fp =
          integrate([&](double s) { return 1 - std::pow(1 - std::pow(s, r), b); }, 0, threshold);
      const double fn = integrate(
          [&](double s) { return 1 - (1 - std::pow(1 - std::pow(s, r), b)); }, threshold, 1);
      if (0.5 * fp + 0.5 * fn < best) {
        best = 0.5 * fp + 0.5 * fn;
        out = {b, r};
      }
    }
  return out;
}

DedupResult dedup(const std::shared_ptr<arrow::Table>& t, const DedupOptions& opt) {
  const int64_t n = t->num_rows();
  auto batch = value_or_throw(t->CombineChunksToBatch(), "dedup");
  std::vector<bool> keep(static_cast<size_t>(n), true);
  auto column_index = [&](const std::string& name) {
    const int i = t->schema()->GetFieldIndex(name);
    if (i < 0) throw InvalidArgument(ErrorContext().key(name), "dedup: no such column");
    return i;
  };
  if (!opt.near) {
    std::vector<int> cols;
    if (opt.columns.empty())
      for (int i = 0; i < t->num_columns(); ++i) cols.push_back(i);
    else
      for (const auto& c : opt.columns) cols.push_back(column_index(c));
    struct H {
      size_t operator()(const std::pair<uint64_t, uint64_t>& p) const { return p.first; }
    };
    std::unordered_set<std::pair<uint64_t, uint64_t>, H> seen;
    std::string key;
    for (int64_t r = 0; r < n; ++r) {
      key.clear();
      for (int c : cols) {
        const auto& a = *batch->column(c);
        if (a.IsNull(r)) {
          key += '\x01';
        } else if (is_text_type(*a.type())) {
          auto v = cell_text(a, r);
          key += std::to_string(v.size()) + ':';
          key.append(v.data(), v.size());
        } else {
          auto v = value_or_throw(a.GetScalar(r), "dedup")->ToString();
          key += std::to_string(v.size()) + ':' + v;
        }
      }
      const std::pair<uint64_t, uint64_t> h{hash_bytes(key.data(), key.size(), 1),
                                            hash_bytes(key.data(), key.size(), 2)};
      if (!seen.insert(h).second) keep[static_cast<size_t>(r)] = false;
    }
  } else {
    if (opt.columns.size() != 1) throw InvalidArgument("dedup --near: give one text column");
    const int c = column_index(opt.columns[0]);
    if (!is_text_type(*batch->column(c)->type()))
      throw InvalidArgument(ErrorContext().key(opt.columns[0]),
                            "dedup --near: not a string column");
    if (!(opt.threshold > 0 && opt.threshold <= 1))
      throw InvalidArgument("dedup: threshold must be in (0, 1]");
    const int P = std::max(2, opt.num_perm);
    constexpr uint64_t kPrime = (1ULL << 61) - 1;
    std::mt19937_64 rng(opt.seed);
    std::vector<uint64_t> pa(static_cast<size_t>(P)), pb(static_cast<size_t>(P));
    for (int i = 0; i < P; ++i) {
      pa[i] = 1 + rng() % (kPrime - 1);
      pb[i] = rng() % kPrime;
    }
    auto mulmod = [](uint64_t a, uint64_t b) {
      const u128 x = static_cast<u128>(a) * b;
      uint64_t r = static_cast<uint64_t>((x & kPrime) + (x >> 61));
      r = (r & kPrime) + (r >> 61);
      return r >= kPrime ? r - kPrime : r;
    };
    std::vector<uint64_t> sig(static_cast<size_t>(n) * P, UINT64_MAX);
    const auto& col = *batch->column(c);
    const int n_threads = static_cast<int>(
        std::clamp<int64_t>(n / 64, 1, std::max(1u, std::thread::hardware_concurrency())));
    run_threads(n_threads, [&](int ti, int tn) {
      const int64_t lo = n * ti / tn, hi = n * (ti + 1) / tn;
      std::vector<std::string_view> words;
      for (int64_t r = lo; r < hi; ++r) {
        auto text = cell_text(col, r);
        words.clear();
        size_t i = 0;
        while (i < text.size()) {
          while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
          size_t j = i;
          while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
          if (j > i) words.push_back(text.substr(i, j - i));
          i = j;
        }
        const size_t k = static_cast<size_t>(std::max(1, opt.ngram));
        const size_t shingles = words.size() >= k ? words.size() - k + 1 : (words.empty() ? 0 : 1);
        uint64_t* s = &sig[static_cast<size_t>(r) * P];
        for (size_t w = 0; w < shingles; ++w) {
          uint64_t h = 0x9e3779b97f4a7c15ULL;
          for (size_t q = w; q < std::min(words.size(), w + k); ++q)
            h = mix64(h ^ hash_bytes(words[q].data(), words[q].size(), 7));
          h %= kPrime;
          for (int p = 0; p < P; ++p) s[p] = std::min(s[p], (mulmod(pa[p], h) + pb[p]) % kPrime);
        }
      }
    });
    const auto [bands, rows] = lsh_params(opt.threshold, P);
    UnionFind uf(n);
    for (int b = 0; b < bands; ++b) {
      std::unordered_map<uint64_t, std::vector<int64_t>> buckets;
      for (int64_t r = 0; r < n; ++r) {
        const uint64_t* s = &sig[static_cast<size_t>(r) * P + static_cast<size_t>(b) * rows];
        if (s[0] == UINT64_MAX) continue;  // empty text
        buckets[hash_bytes(reinterpret_cast<const char*>(s), sizeof(uint64_t) * rows,
                           static_cast<uint64_t>(b))]
            .push_back(r);
      }
      for (const auto& [k, rs] : buckets)
        for (size_t i = 1; i < rs.size(); ++i) {
          // verify the candidate pair with the full signature
          const uint64_t* x = &sig[static_cast<size_t>(rs[0]) * P];
          const uint64_t* y = &sig[static_cast<size_t>(rs[i]) * P];
          int eq = 0;
          for (int p = 0; p < P; ++p) eq += x[p] == y[p];
          if (static_cast<double>(eq) / P >= opt.threshold) uf.unite(rs[0], rs[i]);
        }
    }
    for (int64_t r = 0; r < n; ++r) keep[static_cast<size_t>(r)] = uf.find(r) == r;
  }
  DedupResult res;
  res.removed = std::count(keep.begin(), keep.end(), false);
  init_compute();
  arrow::BooleanBuilder bb;
  for (bool v : keep) check(bb.Append(v), "dedup");
  std::shared_ptr<arrow::Array> mask;
  check(bb.Finish(&mask), "dedup");
  res.table = value_or_throw(arrow::compute::Filter(t, mask), "dedup").table();
  return res;
}

}  // namespace ohm::datasets
