#include "models/forward.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/vec.h"

namespace fox {
namespace {

float MaxAbs(const float* w, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(w[i]));
  return m;
}

void LinearT(const std::vector<float>& x, int64_t rows, int64_t k, const Tensor& w, float* y) {
  cpu::Linear(x.data(), rows, k, w.data, w.dtype, w.shape[0], y);
}

}  // namespace

CpuForward::CpuForward(const FoxConfig& config, const FoxWeights& weights,
                       const ForwardOptions& options)
    : config_(config), weights_(weights), options_(options) {
  // With QK-norm, |q.k| / sqrt(d) <= max|wq| * max|wk| * sqrt(d) per head.
  u_static_.resize(config.num_layers);
  if (!config.qk_norm) return;
  const int d = config.head_dim;
  for (int l = 0; l < config.num_layers; ++l) {
    const LayerWeights& lw = weights.layers[l];
    for (int h = 0; h < config.num_heads; ++h) {
      const int64_t off = config.qk_norm_shared ? 0 : int64_t{h} * d;
      u_static_[l].push_back(MaxAbs(lw.q_norm.f32() + off, d) * MaxAbs(lw.k_norm.f32() + off, d) *
                             std::sqrt(static_cast<float>(d)));
    }
  }
}

void CpuForward::Run(absl::Span<const ForwardSequence> batch, const PagedKv& kv,
                     std::vector<float>* logits, ForwardCounters* counters) {
  const int64_t H = config_.hidden_size, nH = config_.num_heads, I = config_.intermediate_size;
  int64_t rows = 0, logit_rows = 0;
  for (const ForwardSequence& seq : batch) {
    assert(!seq.tokens.empty());
    rows += seq.tokens.size();
    logit_rows += seq.all_logits ? seq.tokens.size() : 1;
  }
  x_.resize(rows * H);
  a_.resize(rows * H);
  q_.resize(rows * H);
  k_raw_.resize(rows * H);
  v_raw_.resize(rows * H);
  k_.resize(rows * H);
  v_.resize(rows * H);
  alpha_k_.resize(rows * nH);
  alpha_v_.resize(rows * nH);
  log_f_.resize(rows * nH);
  query_l_.resize(rows * nH);
  key_norm_max_.resize(rows * nH);
  gate_.resize(rows * H);
  attn_.resize(rows * H);
  proj_.resize(rows * H);
  gate_up_.resize(rows * 2 * I);
  act_.resize(rows * I);

  int64_t row = 0;
  for (const ForwardSequence& seq : batch) {
    cpu::EmbeddingLookup(weights_.embeddings.data, weights_.embeddings.dtype, H, seq.tokens.data(),
                         seq.tokens.size(), x_.data() + row * H);
    row += seq.tokens.size();
  }
  for (int layer = 0; layer < config_.num_layers; ++layer) RunLayer(layer, batch, kv, counters);

  // Final norm and lm_head on the rows that want logits.
  std::vector<float>& h = a_;
  int64_t out_row = 0;
  row = 0;
  for (const ForwardSequence& seq : batch) {
    const int64_t n = seq.tokens.size();
    const int64_t first = seq.all_logits ? 0 : n - 1;
    std::copy(x_.begin() + (row + first) * H, x_.begin() + (row + n) * H,
              h.begin() + out_row * H);
    out_row += n - first;
    row += n;
  }
  cpu::RmsNorm(h.data(), logit_rows, H, weights_.final_norm.f32(), config_.norm_eps, h.data());
  logits->resize(logit_rows * config_.vocab_size);
  LinearT(h, logit_rows, H, weights_.lm_head, logits->data());
  for (const ForwardSequence& seq : batch) seq.state->num_tokens += seq.tokens.size();
}

void CpuForward::RunLayer(int layer, absl::Span<const ForwardSequence> batch, const PagedKv& kv,
                          ForwardCounters* counters) {
  const FoxConfig& c = config_;
  const LayerWeights& w = weights_.layers[layer];
  const int64_t H = c.hidden_size, nH = c.num_heads, d = c.head_dim, I = c.intermediate_size;
  const int64_t rows = x_.size() / H;

  // Attention input projections.
  cpu::RmsNorm(x_.data(), rows, H, w.attn_norm.f32(), c.norm_eps, a_.data());
  LinearT(a_, rows, H, w.q_proj, q_.data());
  LinearT(a_, rows, H, w.k_proj, k_raw_.data());
  LinearT(a_, rows, H, w.v_proj, v_raw_.data());
  if (c.use_k_shift) {
    LinearT(a_, rows, H, w.k_shift, alpha_k_.data());
    cpu::SigmoidInPlace(alpha_k_.data(), rows * nH);
  }
  if (c.use_v_shift) {
    LinearT(a_, rows, H, w.v_shift, alpha_v_.data());
    cpu::SigmoidInPlace(alpha_v_.data(), rows * nH);
  }
  LinearT(a_, rows, H, w.fgate_w, log_f_.data());
  cpu::LogSigmoidWithBiasInPlace(log_f_.data(), rows, nH, w.fgate_b.f32());
  if (c.use_output_gate) {
    LinearT(a_, rows, H, w.ogate, gate_.data());
    cpu::SigmoidInPlace(gate_.data(), rows * H);
  }

  // KV-shift from each sequence's carried state, then QK-norm, L and the cache.
  ShiftAndState(layer, batch);
  if (c.qk_norm) {
    const int64_t stride = c.qk_norm_shared ? 0 : d;
    cpu::GroupRmsNorm(q_.data(), rows, nH, d, w.q_norm.f32(), stride, c.qk_norm_eps);
    cpu::GroupRmsNorm(k_.data(), rows, nH, d, w.k_norm.f32(), stride, c.qk_norm_eps);
  }
  queries_.clear();
  int64_t row0 = 0;
  for (const ForwardSequence& seq : batch) {
    const int64_t n = seq.tokens.size();
    const int64_t pos0 = seq.state->num_tokens;
    const HeadBlockTable* tables = seq.tables + int64_t{layer} * nH;
    SequenceState& st = *seq.state;
    for (int64_t t = 0; t < n; ++t) {
      const int64_t r = row0 + t;
      for (int64_t h = 0; h < nH; ++h) {
        double& l = st.last_l[layer * nH + h];
        l += log_f_[r * nH + h];
        query_l_[r * nH + h] = l;
        const float* kr = k_.data() + r * H + h * d;
        if (!c.qk_norm) {
          float& m = st.key_norm_max[layer * nH + h];
          m = std::max(m, std::sqrt(cpu::DotF32(kr, kr, d)));
          key_norm_max_[r * nH + h] = m;
        }
        WriteKvToken(kv, tables[h], pos0 + t, kr, v_.data() + r * H + h * d, l);
      }
    }
    cpu::AttentionQueries q;
    q.row0 = row0;
    q.num_queries = static_cast<int32_t>(n);
    q.pos0 = pos0;
    q.tables = tables;
    q.query_l = query_l_.data() + row0 * nH;
    q.key_norm_max = c.qk_norm ? nullptr : key_norm_max_.data() + row0 * nH;
    queries_.push_back(q);
    row0 += n;
  }

  cpu::AcpOptions acp;
  acp.enabled = options_.acp;
  acp.log_eps = options_.acp_log_eps;
  acp.u_static = c.qk_norm ? u_static_[layer].data() : nullptr;
  cpu::AttentionCounters attention_counters;
  const auto attention_start = std::chrono::steady_clock::now();
  cpu::ForgetAttention(kv, queries_.data(), static_cast<int32_t>(queries_.size()),
                       static_cast<int32_t>(nH), q_.data(), acp, attn_.data(),
                       &attention_counters);
  if (counters != nullptr) {
    counters->attention_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - attention_start).count();
    counters->key_blocks_read += attention_counters.key_blocks_read;
    counters->key_blocks_skipped += attention_counters.key_blocks_skipped;
  }

  // Output norm and gate, projection, residual.
  if (c.use_output_norm) {
    cpu::GroupRmsNorm(attn_.data(), rows, nH, d, w.output_norm.f32(), d, c.norm_eps);
  }
  if (c.use_output_gate) cpu::MulInPlace(attn_.data(), gate_.data(), rows * H);
  LinearT(attn_, rows, H, w.o_proj, proj_.data());
  cpu::AddInPlace(x_.data(), proj_.data(), rows * H);

  // SwiGLU MLP.
  cpu::RmsNorm(x_.data(), rows, H, w.mlp_norm.f32(), c.norm_eps, a_.data());
  LinearT(a_, rows, H, w.gate_up, gate_up_.data());
  cpu::SiluMul(gate_up_.data(), rows, I, act_.data());
  LinearT(act_, rows, I, w.down, proj_.data());
  cpu::AddInPlace(x_.data(), proj_.data(), rows * H);
}

// k_t[h] = alpha_t[h] * k~_{t-1}[h] + (1 - alpha_t[h]) * k~_t[h], where k~_{-1}
// is the raw projection carried from the sequence's previous call (zero at its
// start); the carried state becomes this call's last raw row.
void CpuForward::ShiftAndState(int layer, absl::Span<const ForwardSequence> batch) {
  const FoxConfig& c = config_;
  const int64_t H = c.hidden_size, nH = c.num_heads, d = c.head_dim;
  auto shift = [&](bool enabled, const std::vector<float>& raw, const std::vector<float>& alpha,
                   std::vector<float> SequenceState::*carried, std::vector<float>& out) {
    if (!enabled) {
      std::copy(raw.begin(), raw.end(), out.begin());
      return;
    }
    int64_t row0 = 0;
    for (const ForwardSequence& seq : batch) {
      const int64_t n = seq.tokens.size();
      float* state = (seq.state->*carried).data() + int64_t{layer} * H;
      for (int64_t t = 0; t < n; ++t) {
        const int64_t r = row0 + t;
        const float* prev = t == 0 ? state : raw.data() + (r - 1) * H;
        for (int64_t h = 0; h < nH; ++h) {
          const float a = alpha[r * nH + h];
          for (int64_t i = h * d; i < (h + 1) * d; ++i) {
            out[r * H + i] = a * prev[i] + (1.0f - a) * raw[r * H + i];
          }
        }
      }
      std::copy(raw.begin() + (row0 + n - 1) * H, raw.begin() + (row0 + n) * H, state);
      row0 += n;
    }
  };
  shift(c.use_k_shift, k_raw_, alpha_k_, &SequenceState::shift_k, k_);
  shift(c.use_v_shift, v_raw_, alpha_v_, &SequenceState::shift_v, v_);
}

}  // namespace fox
