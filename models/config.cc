// Parsing, validation and serialisation of FoX config.json files, and the
// named configurations make-model writes.
#include "models/config.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "models/bounded_json.h"
#include "nlohmann/json.hpp"

namespace fox {
namespace {

using json = nlohmann::json;

// Bounds that keep every size product (NumParameters, tensor byte counts) far
// from int64 overflow; real models are orders of magnitude below them.
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;

// Reads typed fields of one config.json object. Every error names the field and
// the file, so a user knows what to fix without reading our code.
class FieldReader {
 public:
  FieldReader(const json& object, const std::string& source) : object_(object), source_(source) {}

  absl::Status Error(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": field '", field, "' ", what));
  }

  // A missing field and an explicit null both yield `fallback`.
  const json* Get(const std::string& field) const {
    auto it = object_.find(field);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  absl::Status PositiveInt(const std::string& field, int64_t max, int* out) const {
    const json* v = Get(field);
    if (v == nullptr) return Error(field, "is required");
    if (!v->is_number_integer()) {
      return Error(field, absl::StrCat("must be an integer, got ", DescribeJsonValue(*v)));
    }
    const int64_t n = v->get<int64_t>();
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max)) {
      return Error(field, absl::StrCat("is implausibly large: ", DescribeJsonValue(*v)));
    }
    if (n <= 0) return Error(field, absl::StrCat("must be positive, got ", n));
    if (n > max) return Error(field, absl::StrCat("is implausibly large: ", n));
    *out = static_cast<int>(n);
    return absl::OkStatus();
  }

  // Token ids: null or absent -> -1; otherwise must index the vocabulary.
  absl::Status TokenId(const std::string& field, int vocab_size, int* out) const {
    const json* v = Get(field);
    if (v == nullptr) {
      *out = -1;
      return absl::OkStatus();
    }
    if (!v->is_number_integer()) {
      return Error(field, absl::StrCat("must be an integer or null, got ", DescribeJsonValue(*v)));
    }
    const int64_t id = v->get<int64_t>();
    if (id < 0 || id >= vocab_size ||
        (v->is_number_unsigned() && v->get<uint64_t>() >= static_cast<uint64_t>(vocab_size))) {
      return Error(
          field, absl::StrCat("is ", DescribeJsonValue(*v), ", outside the vocabulary [0, ", vocab_size, ")"));
    }
    *out = static_cast<int>(id);
    return absl::OkStatus();
  }

  absl::Status Bool(const std::string& field, bool fallback, bool* out) const {
    const json* v = Get(field);
    if (v == nullptr) {
      *out = fallback;
      return absl::OkStatus();
    }
    if (!v->is_boolean()) {
      return Error(field, absl::StrCat("must be true or false, got ", DescribeJsonValue(*v)));
    }
    *out = v->get<bool>();
    return absl::OkStatus();
  }

  absl::Status Number(const std::string& field, double fallback, double* out) const {
    const json* v = Get(field);
    if (v == nullptr) {
      *out = fallback;
      return absl::OkStatus();
    }
    if (!v->is_number()) return Error(field, absl::StrCat("must be a number, got ", DescribeJsonValue(*v)));
    *out = v->get<double>();
    return absl::OkStatus();
  }

  // A field that must hold FoX's value; absent means the authors' default,
  // which is FoX's value for every field this is used on.
  absl::Status Require(const std::string& field, const json& required, bool null_ok = false) const {
    auto it = object_.find(field);
    if (it == object_.end()) return absl::OkStatus();
    if (it->is_null() && null_ok) return absl::OkStatus();
    if (*it == required) return absl::OkStatus();
    return Error(
        field,
        absl::StrCat("is ", DescribeJsonValue(*it), "; a FoX model needs ", required.dump(),
                     " (other values belong to the authors' baselines and change the math)"));
  }

  // A field that must be null (or absent).
  absl::Status RequireNull(const std::string& field, const std::string& why) const {
    const json* v = Get(field);
    if (v == nullptr) return absl::OkStatus();
    return Error(field, absl::StrCat("is ", DescribeJsonValue(*v), "; a FoX model needs null (", why, ")"));
  }

 private:
  const json& object_;
  const std::string& source_;
};

// Shortest decimal that reads back as the same float, so config.json says
// 1e-06 rather than 9.999999974752427e-07.
double ShortestDouble(float f) {
  char buf[32];
  for (int digits = 6; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*g", digits, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return std::strtod(buf, nullptr);
}

#define FOX_RETURN_IF_ERROR(expr)      \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (false)

}  // namespace

int DefaultIntermediateSize(int hidden_size, double hidden_ratio) {
  const int64_t raw = static_cast<int64_t>(hidden_size * hidden_ratio * 2.0 / 3.0);
  return static_cast<int>(256 * ((raw + 255) / 256));
}

int64_t FoxConfig::NumParameters() const {
  const int64_t h = hidden_size, nh = num_heads, d = head_dim, i = intermediate_size;
  int64_t layer = 4 * h * h      // q, k, v, o
                  + nh * h + nh  // forget gate weight and bias
                  + 2 * h        // attn_norm, mlp_norm
                  + 3 * i * h;   // gate_up [2I, H] and down [H, I]
  if (use_k_shift) layer += nh * h;
  if (use_v_shift) layer += nh * h;
  if (qk_norm) layer += 2 * (qk_norm_shared ? d : h);
  if (use_output_gate) layer += h * h;
  if (use_output_norm) layer += h;
  return layer * num_layers + 2 * static_cast<int64_t>(vocab_size) * h + h;
}

absl::StatusOr<FoxConfig> ParseFoxConfig(const std::string& json_text, const std::string& source) {
  absl::StatusOr<json> parsed = ParseBoundedJson(json_text, source);
  if (!parsed.ok()) return parsed.status();
  const json& root = *parsed;
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a JSON object"));
  }
  const FieldReader r(root, source);

  const json* model_type = r.Get("model_type");
  if (model_type == nullptr || *model_type != "forgetting_transformer-project_fox") {
    return r.Error("model_type", absl::StrCat("is ", model_type ? DescribeJsonValue(*model_type) : "missing",
                                              "; expected \"forgetting_transformer-project_fox\""));
  }
  // Fields that change the math: only FoX's values are served.
  FOX_RETURN_IF_ERROR(r.Require("fgate_type", "full"));
  FOX_RETURN_IF_ERROR(r.Require("use_rope", false));
  FOX_RETURN_IF_ERROR(r.Require("hidden_act", "swish"));
  FOX_RETURN_IF_ERROR(r.Require("attention_bias", false));
  FOX_RETURN_IF_ERROR(r.Require("tie_word_embeddings", false));
  FOX_RETURN_IF_ERROR(r.RequireNull("window_size", "sliding windows are not FoX"));

  FoxConfig c;
  FOX_RETURN_IF_ERROR(r.PositiveInt("vocab_size", kMaxDim, &c.vocab_size));
  FOX_RETURN_IF_ERROR(r.PositiveInt("hidden_size", kMaxDim, &c.hidden_size));
  FOX_RETURN_IF_ERROR(r.PositiveInt("num_hidden_layers", kMaxLayers, &c.num_layers));
  FOX_RETURN_IF_ERROR(r.PositiveInt("num_heads", kMaxDim, &c.num_heads));
  if (c.hidden_size % c.num_heads != 0) {
    return r.Error(
        "hidden_size",
        absl::StrCat("(", c.hidden_size, ") is not divisible by num_heads (", c.num_heads, ")"));
  }
  c.head_dim = c.hidden_size / c.num_heads;
  if (r.Get("num_kv_heads") != nullptr) {
    int kv_heads = 0;
    FOX_RETURN_IF_ERROR(r.PositiveInt("num_kv_heads", kMaxDim, &kv_heads));
    if (kv_heads != c.num_heads) {
      return r.Error("num_kv_heads", absl::StrCat("is ", kv_heads,
                                                  "; grouped-query attention is not part of FoX "
                                                  "(it must be null or equal num_heads, ",
                                                  c.num_heads, ")"));
    }
  }
  if (r.Get("intermediate_size") != nullptr) {
    FOX_RETURN_IF_ERROR(r.PositiveInt("intermediate_size", kMaxDim, &c.intermediate_size));
  } else {
    double ratio = 4.0;
    FOX_RETURN_IF_ERROR(r.Number("hidden_ratio", 4.0, &ratio));
    if (!(ratio > 0) || ratio * c.hidden_size > kMaxDim) {
      return r.Error("hidden_ratio", absl::StrCat("must be positive and sane, got ", ratio));
    }
    c.intermediate_size = DefaultIntermediateSize(c.hidden_size, ratio);
  }
  double eps = 1e-6;
  FOX_RETURN_IF_ERROR(r.Number("norm_eps", 1e-6, &eps));
  if (!(eps > 0 && eps < 1)) {
    return r.Error("norm_eps", absl::StrCat("must be in (0, 1), got ", eps));
  }
  c.norm_eps = static_cast<float>(eps);

  FOX_RETURN_IF_ERROR(r.Bool("use_k_shift", false, &c.use_k_shift));
  FOX_RETURN_IF_ERROR(r.Bool("use_v_shift", false, &c.use_v_shift));
  FOX_RETURN_IF_ERROR(r.Bool("qk_norm", false, &c.qk_norm));
  FOX_RETURN_IF_ERROR(r.Bool("qk_norm_share_param_across_head", false, &c.qk_norm_shared));
  FOX_RETURN_IF_ERROR(r.Bool("use_output_gate", false, &c.use_output_gate));
  FOX_RETURN_IF_ERROR(r.Bool("use_output_norm", false, &c.use_output_norm));
  // The activation only matters where there is a gate to apply it to.
  if (c.use_output_gate) FOX_RETURN_IF_ERROR(r.Require("ogate_act", "sigmoid"));

  FOX_RETURN_IF_ERROR(r.TokenId("bos_token_id", c.vocab_size, &c.bos_token_id));
  FOX_RETURN_IF_ERROR(r.TokenId("eos_token_id", c.vocab_size, &c.eos_token_id));
  return c;
}

absl::StatusOr<FoxConfig> LoadFoxConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat(path, ": read error"));
  return ParseFoxConfig(text.str(), path);
}

std::string FoxConfigToJson(const FoxConfig& c) {
  auto token = [](int id) { return id < 0 ? json(nullptr) : json(id); };
  // nlohmann::json keeps keys sorted, as transformers' save_pretrained does.
  json j = {
      {"architectures", {"ForgettingTransformerForCausalLM"}},
      {"attention_bias", false},
      {"bos_token_id", token(c.bos_token_id)},
      {"decay_time_max", nullptr},
      {"decay_time_min", nullptr},
      {"elementwise_affine", true},
      {"eos_token_id", token(c.eos_token_id)},
      {"fgate_bias_init", false},
      {"fgate_type", "full"},
      {"fuse_cross_entropy", true},
      {"fuse_norm", true},
      {"hidden_act", "swish"},
      {"hidden_ratio", 4},
      {"hidden_size", c.hidden_size},
      {"initializer_range", 0.02},
      {"intermediate_size", c.intermediate_size},
      {"log_pruning_tolerance", nullptr},
      {"max_position_embeddings", nullptr},
      {"model_type", "forgetting_transformer-project_fox"},
      {"norm_eps", ShortestDouble(c.norm_eps)},
      {"num_heads", c.num_heads},
      {"num_hidden_layers", c.num_layers},
      {"num_kv_heads", nullptr},
      {"ogate_act", "sigmoid"},
      {"pad_token_id", nullptr},
      {"qk_norm", c.qk_norm},
      {"qk_norm_share_param_across_head", c.qk_norm_shared},
      {"rope_base", 500000.0},
      {"tie_word_embeddings", false},
      {"torch_dtype", "float32"},
      {"use_cache", true},
      {"use_k_shift", c.use_k_shift},
      {"use_output_gate", c.use_output_gate},
      {"use_output_norm", c.use_output_norm},
      {"use_rope", false},
      {"use_v_shift", c.use_v_shift},
      {"vocab_size", c.vocab_size},
      {"window_size", nullptr},
  };
  return j.dump(2) + "\n";
}

absl::StatusOr<FoxConfig> NamedFoxConfig(const std::string& name, bool pro) {
  FoxConfig c;
  c.vocab_size = 50257;
  if (name == "tiny") {
    c.hidden_size = 256, c.num_layers = 4, c.num_heads = 4;
    c.intermediate_size = DefaultIntermediateSize(c.hidden_size);
  } else if (name == "125m") {
    c.hidden_size = 768, c.num_layers = 12, c.num_heads = 12, c.intermediate_size = 1792;
  } else if (name == "360m") {
    c.hidden_size = 1024, c.num_layers = 24, c.num_heads = 16, c.intermediate_size = 2560;
  } else if (name == "760m") {
    c.hidden_size = 1536, c.num_layers = 24, c.num_heads = 24, c.intermediate_size = 3584;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown model configuration '", name,
                                                   "' (expected tiny, 125m, 360m or 760m)"));
  }
  c.head_dim = c.hidden_size / c.num_heads;
  c.use_k_shift = c.use_v_shift = pro;
  c.qk_norm = pro;
  c.qk_norm_shared = true;  // as in the released checkpoints
  c.use_output_gate = c.use_output_norm = pro;
  return c;
}

}  // namespace fox
