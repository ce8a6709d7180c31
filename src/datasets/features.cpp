// HF `datasets` Features <-> Arrow types, and rows as JSON.
#include <arrow/api.h>
#include <arrow/util/key_value_metadata.h>

#include "ohm/core/error.h"
#include "ohm/datasets/dataset.h"

namespace ohm::datasets {

using nlohmann::json;

namespace {

json value(const std::string& dtype) {
  return json{{"dtype", dtype}, {"_type", "Value"}};
}

const char* unit_str(arrow::TimeUnit::type u) {
  switch (u) {
    case arrow::TimeUnit::SECOND:
      return "s";
    case arrow::TimeUnit::MILLI:
      return "ms";
    case arrow::TimeUnit::MICRO:
      return "us";
    case arrow::TimeUnit::NANO:
      return "ns";
  }
  return "us";
}

bool parse_unit(const std::string& s, arrow::TimeUnit::type& u) {
  if (s == "s")
    u = arrow::TimeUnit::SECOND;
  else if (s == "ms")
    u = arrow::TimeUnit::MILLI;
  else if (s == "us")
    u = arrow::TimeUnit::MICRO;
  else if (s == "ns")
    u = arrow::TimeUnit::NANO;
  else
    return false;
  return true;
}

// As datasets' generate_from_arrow_type / _arrow_to_datasets_dtype.
json feature_of(const arrow::DataType& t) {
  using arrow::Type;
  switch (t.id()) {
    case Type::NA:
      return value("null");
    case Type::BOOL:
      return value("bool");
    case Type::INT8:
      return value("int8");
    case Type::INT16:
      return value("int16");
    case Type::INT32:
      return value("int32");
    case Type::INT64:
      return value("int64");
    case Type::UINT8:
      return value("uint8");
    case Type::UINT16:
      return value("uint16");
    case Type::UINT32:
      return value("uint32");
    case Type::UINT64:
      return value("uint64");
    case Type::HALF_FLOAT:
      return value("float16");
    case Type::FLOAT:
      return value("float32");
    case Type::DOUBLE:
      return value("float64");
    case Type::STRING:
      return value("string");
    case Type::LARGE_STRING:
      return value("large_string");
    case Type::STRING_VIEW:
      return value("string_view");
    case Type::BINARY:
      return value("binary");
    case Type::LARGE_BINARY:
      return value("large_binary");
    case Type::DATE32:
      return value("date32");
    case Type::DATE64:
      return value("date64");
    case Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampType&>(t);
      std::string s = std::string("timestamp[") + unit_str(ts.unit());
      if (!ts.timezone().empty()) s += ", tz=" + ts.timezone();
      return value(s + "]");
    }
    case Type::TIME32:
    case Type::TIME64:
      return value(std::string(t.id() == Type::TIME32 ? "time32[" : "time64[") +
                   unit_str(static_cast<const arrow::TimeType&>(t).unit()) + "]");
    case Type::DURATION:
      return value(std::string("duration[") +
                   unit_str(static_cast<const arrow::DurationType&>(t).unit()) + "]");
    case Type::LIST:
      return json{{"feature", feature_of(*static_cast<const arrow::ListType&>(t).value_type())},
                  {"_type", "List"}};
    case Type::LARGE_LIST:
      return json{
          {"feature", feature_of(*static_cast<const arrow::LargeListType&>(t).value_type())},
          {"_type", "LargeList"}};
    case Type::FIXED_SIZE_LIST: {
      const auto& l = static_cast<const arrow::FixedSizeListType&>(t);
      return json{
          {"feature", feature_of(*l.value_type())}, {"length", l.list_size()}, {"_type", "List"}};
    }
    case Type::STRUCT: {
      json o = json::object();
      for (const auto& f : t.fields()) o[f->name()] = feature_of(*f->type());
      return o;
    }
    case Type::DICTIONARY:
      return feature_of(*static_cast<const arrow::DictionaryType&>(t).value_type());
    default:
      throw UnsupportedError(ErrorContext().note("arrow type", t.ToString()),
                             "no HF datasets feature for this Arrow type");
  }
}

std::shared_ptr<arrow::DataType> dtype_of(const std::string& d) {
  static const std::vector<std::pair<std::string, std::shared_ptr<arrow::DataType>>> simple = {
      {"null", arrow::null()},
      {"bool", arrow::boolean()},
      {"int8", arrow::int8()},
      {"int16", arrow::int16()},
      {"int32", arrow::int32()},
      {"int64", arrow::int64()},
      {"uint8", arrow::uint8()},
      {"uint16", arrow::uint16()},
      {"uint32", arrow::uint32()},
      {"uint64", arrow::uint64()},
      {"float16", arrow::float16()},
      {"float32", arrow::float32()},
      {"float64", arrow::float64()},
      {"string", arrow::utf8()},
      {"large_string", arrow::large_utf8()},
      {"binary", arrow::binary()},
      {"large_binary", arrow::large_binary()},
      {"date32", arrow::date32()},
      {"date64", arrow::date64()},
      {"string_view", arrow::utf8_view()},
  };
  for (const auto& [name, t] : simple)
    if (d == name) return t;
  if (d == "float") return arrow::float32();
  if (d == "double") return arrow::float64();
  arrow::TimeUnit::type u;
  auto inner = [&](const char* prefix) -> std::string {
    const std::string p = prefix;
    if (d.rfind(p, 0) == 0 && d.back() == ']') return d.substr(p.size(), d.size() - p.size() - 1);
    return {};
  };
  if (auto in = inner("timestamp["); !in.empty()) {
    std::string unit = in, tz;
    if (auto c = in.find(", tz="); c != std::string::npos) {
      unit = in.substr(0, c);
      tz = in.substr(c + 5);
    }
    if (parse_unit(unit, u)) return arrow::timestamp(u, tz);
  }
  if (auto in = inner("time32["); !in.empty() && parse_unit(in, u)) return arrow::time32(u);
  if (auto in = inner("time64["); !in.empty() && parse_unit(in, u)) return arrow::time64(u);
  if (auto in = inner("duration["); !in.empty() && parse_unit(in, u)) return arrow::duration(u);
  throw FormatError(ErrorContext().key("dtype"), "unknown Value dtype '" + d + "'");
}

}  // namespace

json features_from_arrow(const arrow::Schema& schema) {
  json o = json::object();
  for (const auto& f : schema.fields()) {
    try {
      o[f->name()] = feature_of(*f->type());
    } catch (const UnsupportedError& e) {
      throw UnsupportedError(ErrorContext().key(f->name()),
                             e.detail() + " (" + f->type()->ToString() + ")");
    }
  }
  return o;
}

std::shared_ptr<arrow::DataType> arrow_type_of(const json& f) {
  if (f.is_array()) {  // the old shorthand: [feature] is a list
    if (f.size() != 1) throw FormatError("a list feature [..] must have one element");
    return arrow::list(arrow_type_of(f[0]));
  }
  if (!f.is_object()) throw FormatError("a feature must be an object");
  if (!f.contains("_type")) {  // a dict of features: a struct
    arrow::FieldVector fields;
    for (const auto& [k, v] : f.items()) fields.push_back(arrow::field(k, arrow_type_of(v)));
    return arrow::struct_(fields);
  }
  const std::string type = f["_type"].get<std::string>();
  if (type == "Value") return dtype_of(f.value("dtype", ""));
  if (type == "ClassLabel") return arrow::int64();
  if (type == "List" || type == "Sequence" || type == "LargeList") {
    if (!f.contains("feature"))
      throw FormatError(ErrorContext().key("feature"), type + " without 'feature'");
    auto inner = arrow_type_of(f["feature"]);
    const int64_t length = f.value("length", int64_t{-1});
    if (type == "LargeList") return arrow::large_list(inner);
    if (length >= 0) return arrow::fixed_size_list(inner, static_cast<int32_t>(length));
    // Sequence of a dict was a struct of lists in datasets < 4
    if (type == "Sequence" && inner->id() == arrow::Type::STRUCT) {
      arrow::FieldVector fields;
      for (const auto& fld : inner->fields())
        fields.push_back(arrow::field(fld->name(), arrow::list(fld->type())));
      return arrow::struct_(fields);
    }
    return arrow::list(inner);
  }
  if (type == "Translation") {
    arrow::FieldVector fields;
    for (const auto& l : f.value("languages", json::array()))
      fields.push_back(arrow::field(l.get<std::string>(), arrow::utf8()));
    return arrow::struct_(fields);
  }
  throw UnsupportedError(ErrorContext().key("_type"), "feature type '" + type + "'");
}

std::shared_ptr<arrow::Schema> schema_of(const json& features) {
  arrow::FieldVector fields;
  for (const auto& [k, v] : features.items()) {
    try {
      fields.push_back(arrow::field(k, arrow_type_of(v)));
    } catch (const Error& e) {
      throw FormatError(ErrorContext().key(k), "feature: " + e.detail());
    }
  }
  return arrow::schema(fields);
}

json features_of(const arrow::Schema& schema) {
  const auto& md = schema.metadata();
  if (md) {
    const int i = md->FindKey("huggingface");
    if (i >= 0) {
      try {
        const json hf = json::parse(md->value(i));
        const json& f = hf.at("info").at("features");
        // use it when it describes exactly these columns with matching types
        bool same = f.is_object() && static_cast<int>(f.size()) == schema.num_fields();
        for (int c = 0; same && c < schema.num_fields(); ++c) {
          const auto& name = schema.field(c)->name();
          same = f.contains(name) && arrow_type_of(f[name])->Equals(*schema.field(c)->type());
        }
        if (same) return f;
      } catch (const std::exception&) {
        // malformed or foreign metadata: derive from the types as datasets does
      }
    }
  }
  return features_from_arrow(schema);
}

std::shared_ptr<arrow::Schema> with_features(const std::shared_ptr<arrow::Schema>& schema,
                                             const json& features) {
  // datasets writes the features in column order; nlohmann::json objects sort keys, so build
  // the text by hand in schema order.
  std::string text = "{\"info\": {\"features\": {";
  bool first = true;
  for (const auto& f : schema->fields()) {
    if (!features.contains(f->name())) {
      throw InvalidArgument(ErrorContext().key(f->name()), "no feature for this column");
    }
    if (!first) text += ", ";
    first = false;
    text += json(f->name()).dump() + ": " + features[f->name()].dump();
  }
  text += "}}}";
  auto md =
      schema->metadata() ? schema->metadata()->Copy() : std::make_shared<arrow::KeyValueMetadata>();
  (void)md->Set("huggingface", text);
  return schema->WithMetadata(md);
}

namespace {

json scalar_json(const arrow::Scalar& s) {
  using arrow::Type;
  if (!s.is_valid) return nullptr;
  switch (s.type->id()) {
    case Type::BOOL:
      return static_cast<const arrow::BooleanScalar&>(s).value;
    case Type::INT8:
      return static_cast<const arrow::Int8Scalar&>(s).value;
    case Type::INT16:
      return static_cast<const arrow::Int16Scalar&>(s).value;
    case Type::INT32:
      return static_cast<const arrow::Int32Scalar&>(s).value;
    case Type::INT64:
      return static_cast<const arrow::Int64Scalar&>(s).value;
    case Type::UINT8:
      return static_cast<const arrow::UInt8Scalar&>(s).value;
    case Type::UINT16:
      return static_cast<const arrow::UInt16Scalar&>(s).value;
    case Type::UINT32:
      return static_cast<const arrow::UInt32Scalar&>(s).value;
    case Type::UINT64:
      return static_cast<const arrow::UInt64Scalar&>(s).value;
    case Type::FLOAT:
      return static_cast<const arrow::FloatScalar&>(s).value;
    case Type::DOUBLE:
      return static_cast<const arrow::DoubleScalar&>(s).value;
    case Type::STRING:
    case Type::LARGE_STRING:
    case Type::STRING_VIEW: {
      const auto& b = static_cast<const arrow::BaseBinaryScalar&>(s);
      return std::string(reinterpret_cast<const char*>(b.value->data()), b.value->size());
    }
    case Type::LIST:
    case Type::LARGE_LIST:
    case Type::FIXED_SIZE_LIST: {
      const auto& l = static_cast<const arrow::BaseListScalar&>(s);
      json a = json::array();
      for (int64_t i = 0; i < l.value->length(); ++i)
        a.push_back(scalar_json(*l.value->GetScalar(i).ValueOrDie()));
      return a;
    }
    case Type::STRUCT: {
      const auto& st = static_cast<const arrow::StructScalar&>(s);
      json o = json::object();
      for (size_t i = 0; i < st.value.size(); ++i)
        o[st.type->field(static_cast<int>(i))->name()] = scalar_json(*st.value[i]);
      return o;
    }
    default:
      return s.ToString();
  }
}

}  // namespace

json row_to_json(const arrow::RecordBatch& batch, int64_t row) {
  json o = json::object();
  for (int c = 0; c < batch.num_columns(); ++c) {
    o[batch.schema()->field(c)->name()] =
        scalar_json(*value_or_throw(batch.column(c)->GetScalar(row), "row"));
  }
  return o;
}

}  // namespace ohm::datasets
