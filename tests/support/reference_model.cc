#include "tests/support/reference_model.h"

#include <cmath>

#include "kernels/dtype.h"

namespace fox::testing {
namespace {

using Vec = std::vector<double>;

Vec ToDouble(const Tensor& t) {
  std::vector<float> f(t.numel());
  ConvertToF32(t.data, t.dtype, t.numel(), f.data());
  return Vec(f.begin(), f.end());
}

// y = W x for W [rows, cols]
Vec MatVec(const Vec& w, int64_t rows, int64_t cols, const Vec& x) {
  Vec y(rows, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0.0;
    for (int64_t c = 0; c < cols; ++c) s += w[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

// RMSNorm over x[offset, offset + n) with weight w[w_offset, ...).
void RmsNormSpan(Vec& x, int64_t offset, int64_t n, const Vec& w, int64_t w_offset, double eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += x[offset + i] * x[offset + i];
  const double inv = 1.0 / std::sqrt(ss / n + eps);
  for (int64_t i = 0; i < n; ++i) x[offset + i] = x[offset + i] * inv * w[w_offset + i];
}

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
double LogSigmoid(double z) { return std::min(z, 0.0) - std::log1p(std::exp(-std::fabs(z))); }

}  // namespace

std::vector<std::vector<double>> ReferenceLogits(const FoxConfig& c, const FoxWeights& weights,
                                                 absl::Span<const int32_t> tokens,
                                                 const ReferenceOptions& options) {
  const int64_t T = tokens.size(), H = c.hidden_size, nH = c.num_heads, d = c.head_dim;
  const int64_t I = c.intermediate_size, V = c.vocab_size;
  const Vec emb = ToDouble(weights.embeddings);
  std::vector<Vec> x(T);
  for (int64_t t = 0; t < T; ++t) x[t] = Vec(emb.begin() + tokens[t] * H, emb.begin() + (tokens[t] + 1) * H);

  for (const LayerWeights& lw : weights.layers) {
    const Vec attn_norm = ToDouble(lw.attn_norm), wq = ToDouble(lw.q_proj),
              wk = ToDouble(lw.k_proj), wv = ToDouble(lw.v_proj), wf = ToDouble(lw.fgate_w),
              bf = ToDouble(lw.fgate_b), wo = ToDouble(lw.o_proj), mlp_norm = ToDouble(lw.mlp_norm),
              wgu = ToDouble(lw.gate_up), wdown = ToDouble(lw.down);
    const Vec ks = c.use_k_shift ? ToDouble(lw.k_shift) : Vec(),
              vs = c.use_v_shift ? ToDouble(lw.v_shift) : Vec(),
              qn = c.qk_norm ? ToDouble(lw.q_norm) : Vec(), kn = c.qk_norm ? ToDouble(lw.k_norm) : Vec(),
              og = c.use_output_gate ? ToDouble(lw.ogate) : Vec(),
              wn = c.use_output_norm ? ToDouble(lw.output_norm) : Vec();
    std::vector<Vec> q(T), k(T), v(T), log_f(T), gate(T);
    Vec k_prev(H, 0.0), v_prev(H, 0.0);  // raw k~, v~ of the previous token
    for (int64_t t = 0; t < T; ++t) {
      Vec a = x[t];
      RmsNormSpan(a, 0, H, attn_norm, 0, c.norm_eps);
      q[t] = MatVec(wq, H, H, a);
      Vec k_raw = MatVec(wk, H, H, a), v_raw = MatVec(wv, H, H, a);
      k[t] = k_raw;
      v[t] = v_raw;
      if (c.use_k_shift) {
        const Vec alpha = MatVec(ks, nH, H, a);
        for (int64_t i = 0; i < H; ++i) {
          const double s = Sigmoid(alpha[i / d]);
          k[t][i] = s * k_prev[i] + (1 - s) * k_raw[i];
        }
      }
      if (c.use_v_shift) {
        const Vec alpha = MatVec(vs, nH, H, a);
        for (int64_t i = 0; i < H; ++i) {
          const double s = Sigmoid(alpha[i / d]);
          v[t][i] = s * v_prev[i] + (1 - s) * v_raw[i];
        }
      }
      k_prev = k_raw;
      v_prev = v_raw;
      if (c.qk_norm) {
        for (int64_t h = 0; h < nH; ++h) {
          const int64_t w_off = c.qk_norm_shared ? 0 : h * d;
          RmsNormSpan(q[t], h * d, d, qn, w_off, c.qk_norm_eps);
          RmsNormSpan(k[t], h * d, d, kn, w_off, c.qk_norm_eps);
        }
      }
      log_f[t] = MatVec(wf, nH, H, a);
      for (int64_t h = 0; h < nH; ++h) log_f[t][h] = LogSigmoid(log_f[t][h] + bf[h]);
      if (c.use_output_gate) {
        gate[t] = MatVec(og, H, H, a);
        for (double& g : gate[t]) g = Sigmoid(g);
      }
    }
    // Attention: the decay between i and j is L_i - L_j, the sum of log f
    // over j+1..i (the key's own gate never counts).
    std::vector<Vec> cum_l(T, Vec(nH));
    for (int64_t h = 0; h < nH; ++h) {
      double sum = 0.0;
      float sum_f = 0.0f;
      for (int64_t t = 0; t < T; ++t) {
        sum += log_f[t][h];
        sum_f += static_cast<float>(log_f[t][h]);
        cum_l[t][h] = options.float32_cumulative_l ? sum_f : sum;
      }
    }
    for (int64_t i = 0; i < T; ++i) {
      Vec o(H, 0.0);
      for (int64_t h = 0; h < nH; ++h) {
        std::vector<double> logit(i + 1);
        double max_logit = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int64_t c2 = 0; c2 < d; ++c2) dot += q[i][h * d + c2] * k[j][h * d + c2];
          logit[j] = dot / std::sqrt(static_cast<double>(d)) + (cum_l[i][h] - cum_l[j][h]);
          max_logit = std::max(max_logit, logit[j]);
        }
        double denom = 0.0;
        for (int64_t j = 0; j <= i; ++j) denom += std::exp(logit[j] - max_logit);
        for (int64_t j = 0; j <= i; ++j) {
          const double p = std::exp(logit[j] - max_logit) / denom;
          for (int64_t c2 = 0; c2 < d; ++c2) o[h * d + c2] += p * v[j][h * d + c2];
        }
      }
      if (c.use_output_norm) {
        for (int64_t h = 0; h < nH; ++h) RmsNormSpan(o, h * d, d, wn, h * d, c.norm_eps);
      }
      if (c.use_output_gate) {
        for (int64_t n = 0; n < H; ++n) o[n] *= gate[i][n];
      }
      const Vec y = MatVec(wo, H, H, o);
      for (int64_t n = 0; n < H; ++n) x[i][n] += y[n];
    }
    for (int64_t t = 0; t < T; ++t) {
      Vec m = x[t];
      RmsNormSpan(m, 0, H, mlp_norm, 0, c.norm_eps);
      const Vec gu = MatVec(wgu, 2 * I, H, m);
      Vec act(I);
      for (int64_t n = 0; n < I; ++n) act[n] = gu[n] * Sigmoid(gu[n]) * gu[I + n];
      const Vec y = MatVec(wdown, H, I, act);
      for (int64_t n = 0; n < H; ++n) x[t][n] += y[n];
    }
  }
  const Vec final_norm = ToDouble(weights.final_norm), lm_head = ToDouble(weights.lm_head);
  std::vector<Vec> logits(T);
  for (int64_t t = 0; t < T; ++t) {
    RmsNormSpan(x[t], 0, H, final_norm, 0, c.norm_eps);
    logits[t] = MatVec(lm_head, V, H, x[t]);
  }
  return logits;
}

double RelativeError(absl::Span<const float> a, absl::Span<const double> b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace fox::testing
