// Tests of the paged forgetting attention against a double-precision naive
// reference, logit(i, j) = q_i . k_j / sqrt(d) + (L_i - L_j) over the live
// keys j <= i, and of ACP skipping: what it drops, what that costs, what it
// reports, and that dropped or freed keys are never read.
#include "kernels/cpu/forget_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/threading.h"
#include "kernels/dtype.h"
#include "kernels/paged_kv.h"

namespace fox::cpu {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One sequence's queries: rows row0.. of q/out at positions pos0..; the keys
// before logical block first_block are freed.
struct SeqSpec {
  int64_t row0;
  int64_t pos0;
  int32_t num_queries;
  int32_t first_block;
  int64_t last_pos() const { return pos0 + num_queries - 1; }
};

// One (sequence, head): L of every position since 0, and the keys and values
// as the cache holds them (already rounded to the KV type).
struct HeadData {
  std::vector<double> l;  // [last_pos + 1]
  std::vector<float> k;   // [last_pos + 1, d]
  std::vector<float> v;   // [last_pos + 1, d]
};

// A whole ForgetAttention call: a poisoned pool, per-(sequence, head) tables
// over shuffled block ids, and the inputs. Tests fill `data` and `q`, then
// Store() writes the live keys and builds the query records.
class Problem {
 public:
  Problem(std::vector<SeqSpec> specs, int32_t num_heads, int32_t head_dim, int32_t block_size,
          DType kv_dtype, int64_t num_rows)
      : specs_(std::move(specs)),
        num_heads_(num_heads),
        d_(head_dim),
        bs_(block_size),
        num_rows_(num_rows) {
    // Every logical block gets a pool block, the freed ones included: they are
    // never written (so hold NaN) and their ids sit just before each table's,
    // where an indexing slip would find them. Three spare blocks belong to no one.
    int32_t num_blocks = 3;
    for (const SeqSpec& s : specs_) {
      num_blocks += num_heads * (static_cast<int32_t>(s.last_pos() / bs_) + 1);
    }
    kv_.num_blocks = num_blocks;
    kv_.block_size = block_size;
    kv_.head_dim = head_dim;
    kv_.kv_dtype = kv_dtype;
    k_pool_.assign(num_blocks * kv_.BlockElems() * DTypeSize(kv_dtype), 0xff);  // NaN
    v_pool_.assign(k_pool_.size(), 0xff);
    anchor_.assign(num_blocks, kNaN);
    offset_.assign(int64_t{num_blocks} * block_size, std::nanf(""));
    kv_.k = k_pool_.data();
    kv_.v = v_pool_.data();
    kv_.l_anchor = anchor_.data();
    kv_.l_offset = offset_.data();
    ids_.resize(num_blocks);
    std::iota(ids_.begin(), ids_.end(), 0);
    std::shuffle(ids_.begin(), ids_.end(), std::mt19937(block_size * 7 + num_heads));
    int32_t next = 0;
    tables_.resize(specs_.size());
    for (size_t s = 0; s < specs_.size(); ++s) {
      const int32_t n =
          static_cast<int32_t>(specs_[s].last_pos() / bs_) - specs_[s].first_block + 1;
      for (int32_t h = 0; h < num_heads; ++h) {
        next += specs_[s].first_block;  // the freed blocks
        tables_[s].push_back(HeadBlockTable{ids_.data() + next, specs_[s].first_block, n});
        next += n;
      }
    }
    data.resize(specs_.size(), std::vector<HeadData>(num_heads));
    q.assign(num_rows * num_heads * head_dim, 0.0f);
  }

  // Rounds k, v to the KV type, writes the live tokens and fills query_l and
  // key_norm_max (the largest key norm at or before each query, in the head).
  void Store() {
    query_l_.assign(specs_.size(), {});
    key_norm_max_.assign(specs_.size(), {});
    queries_.clear();
    for (size_t s = 0; s < specs_.size(); ++s) {
      const SeqSpec& spec = specs_[s];
      std::vector<float> norm_max(spec.last_pos() + 1);
      query_l_[s].resize(int64_t{spec.num_queries} * num_heads_);
      key_norm_max_[s].resize(query_l_[s].size());
      for (int32_t h = 0; h < num_heads_; ++h) {
        HeadData& hd = data[s][h];
        float running = 0.0f;
        for (int64_t pos = 0; pos <= spec.last_pos(); ++pos) {
          float* k = hd.k.data() + pos * d_;
          float* v = hd.v.data() + pos * d_;
          for (int c = 0; c < d_; ++c) {
            k[c] = RoundToKv(k[c]);
            v[c] = RoundToKv(v[c]);
          }
          double sq = 0.0;
          for (int c = 0; c < d_; ++c) sq += double{k[c]} * k[c];
          running = std::max(running, static_cast<float>(std::sqrt(sq)));
          norm_max[pos] = running;
          if (pos >= int64_t{spec.first_block} * bs_) {
            WriteKvToken(kv_, tables_[s][h], pos, k, v, hd.l[pos]);
          }
        }
        for (int32_t i = 0; i < spec.num_queries; ++i) {
          query_l_[s][int64_t{i} * num_heads_ + h] = hd.l[spec.pos0 + i];
          key_norm_max_[s][int64_t{i} * num_heads_ + h] = norm_max[spec.pos0 + i];
        }
      }
    }
    for (size_t s = 0; s < specs_.size(); ++s) {
      AttentionQueries aq;
      aq.row0 = specs_[s].row0;
      aq.num_queries = specs_[s].num_queries;
      aq.pos0 = specs_[s].pos0;
      aq.tables = tables_[s].data();
      aq.query_l = query_l_[s].data();
      aq.key_norm_max = key_norm_max_[s].data();
      queries_.push_back(aq);
    }
  }

  // Runs the kernel on sequences [first_seq, first_seq + num_seqs) into a
  // NaN-filled output of all rows.
  std::vector<float> Run(const AcpOptions& acp, AttentionCounters* counters = nullptr,
                         int32_t first_seq = 0, int32_t num_seqs = -1) const {
    if (num_seqs < 0) num_seqs = static_cast<int32_t>(queries_.size()) - first_seq;
    std::vector<float> out(q.size(), std::nanf(""));
    ForgetAttention(kv_, queries_.data() + first_seq, num_seqs, num_heads_, q.data(), acp,
                    out.data(), counters);
    return out;
  }

  // Overwrites the cached K and V of token `pos` of (seq, head) with NaN.
  void PoisonToken(int s, int h, int64_t pos) {
    const int32_t block = tables_[s][h].blocks[pos / bs_ - tables_[s][h].first_block];
    const int64_t elem = block * kv_.BlockElems() + (pos % bs_) * d_;
    const int64_t size = DTypeSize(kv_.kv_dtype);
    std::memset(k_pool_.data() + elem * size, 0xff, d_ * size);
    std::memset(v_pool_.data() + elem * size, 0xff, d_ * size);
  }

  const std::vector<SeqSpec>& specs() const { return specs_; }
  int32_t num_heads() const { return num_heads_; }
  int32_t head_dim() const { return d_; }
  int32_t block_size() const { return bs_; }
  int64_t num_rows() const { return num_rows_; }
  float key_norm_max(int s, int32_t i, int32_t h) const {
    return key_norm_max_[s][int64_t{i} * num_heads_ + h];
  }

  std::vector<std::vector<HeadData>> data;  // [seq][head]
  std::vector<float> q;                     // [rows, heads, d]

 private:
  float RoundToKv(float x) const {
    if (kv_.kv_dtype == DType::kBF16) return Bf16ToF32(F32ToBf16(x));
    if (kv_.kv_dtype == DType::kF16) return F16ToF32(F32ToF16(x));
    return x;
  }

  std::vector<SeqSpec> specs_;
  int32_t num_heads_, d_, bs_;
  int64_t num_rows_;
  PagedKv kv_;
  std::vector<uint8_t> k_pool_, v_pool_;
  std::vector<double> anchor_;
  std::vector<float> offset_;
  std::vector<int32_t> ids_;
  std::vector<std::vector<HeadBlockTable>> tables_;
  std::vector<std::vector<double>> query_l_;
  std::vector<std::vector<float>> key_norm_max_;
  std::vector<AttentionQueries> queries_;
};

// The ACP threshold of one query, with U formed as the kernel forms it.
double AcpDelta(const Problem& p, const AcpOptions& acp, int s, int32_t i, int32_t h) {
  const int64_t pos = p.specs()[s].pos0 + i;
  double u;
  if (acp.u_static != nullptr) {
    u = acp.u_static[h];
  } else {
    const float* q = p.q.data() + ((p.specs()[s].row0 + i) * p.num_heads() + h) * p.head_dim();
    double q_sq = 0.0;
    for (int c = 0; c < p.head_dim(); ++c) q_sq += double{q[c]} * q[c];
    u = std::sqrt(q_sq) * p.key_norm_max(s, i, h) / std::sqrt(double(p.head_dim()));
  }
  return -2.0 * u - std::log(static_cast<double>(pos + 1)) + acp.log_eps;
}

// The naive reference for one (sequence, query, head), in double.
struct RefResult {
  std::vector<double> out_full;  // softmax over all live keys
  std::vector<double> out_kept;  // softmax over the live keys with D >= delta
  double dropped_mass = 0.0;     // full-softmax mass of the keys with D < delta
  int64_t num_dropped = 0;
  int64_t blocks_read = 0, blocks_skipped = 0;  // as ACP should count them
};

RefResult Reference(const Problem& p, int s, int32_t i, int32_t h, double delta) {
  const SeqSpec& spec = p.specs()[s];
  const HeadData& hd = p.data[s][h];
  const int d = p.head_dim(), bs = p.block_size();
  const int64_t pos = spec.pos0 + i;
  const int64_t j0 = int64_t{spec.first_block} * bs;
  const float* q = p.q.data() + ((spec.row0 + i) * p.num_heads() + h) * d;
  std::vector<double> logits(pos + 1);
  double max_logit = -INFINITY;
  for (int64_t j = j0; j <= pos; ++j) {
    double dot = 0.0;
    for (int c = 0; c < d; ++c) dot += double{q[c]} * hd.k[j * d + c];
    logits[j] = dot / std::sqrt(double(d)) + (hd.l[pos] - hd.l[j]);
    max_logit = std::max(max_logit, logits[j]);
  }
  RefResult r;
  r.out_full.assign(d, 0.0);
  r.out_kept.assign(d, 0.0);
  double sum_full = 0.0, sum_kept = 0.0;
  for (int64_t j = j0; j <= pos; ++j) {
    const double w = std::exp(logits[j] - max_logit);
    const bool dropped = hd.l[pos] - hd.l[j] < delta;
    sum_full += w;
    if (dropped) {
      r.dropped_mass += w;
      ++r.num_dropped;
    } else {
      sum_kept += w;
    }
    for (int c = 0; c < d; ++c) {
      r.out_full[c] += w * hd.v[j * d + c];
      if (!dropped) r.out_kept[c] += w * hd.v[j * d + c];
    }
  }
  for (int c = 0; c < d; ++c) {
    r.out_full[c] /= sum_full;
    r.out_kept[c] /= sum_kept;
  }
  r.dropped_mass /= sum_full;
  for (int64_t b = spec.first_block; b <= pos / bs; ++b) {
    const int64_t newest = std::min(pos, (b + 1) * bs - 1);
    const bool skipped = r.blocks_read == 0 && hd.l[pos] - hd.l[newest] < delta;
    ++(skipped ? r.blocks_skipped : r.blocks_read);
  }
  return r;
}

// ||a - b|| / ||b|| for one output row of one head.
double RelativeError(const float* a, const std::vector<double>& b) {
  double err = 0.0, ref = 0.0;
  for (size_t c = 0; c < b.size(); ++c) {
    err += (a[c] - b[c]) * (a[c] - b[c]);
    ref += b[c] * b[c];
  }
  return std::sqrt(err / ref);
}

// How queries and keys are drawn: plain normals (U from the data), or per-head
// RMS-normalised rows times norm weights, as QK-norm makes them (static U).
enum class QkMode { kRandom, kQkNorm };

struct Config {
  int32_t block_size;
  DType kv_dtype;
  QkMode qk_mode;
  int32_t head_dim = 64;
  uint64_t seed = 1;
};

std::string Describe(const Config& c) {
  return std::string("block_size=") + std::to_string(c.block_size) +
         " kv=" + DTypeName(c.kv_dtype) + " head_dim=" + std::to_string(c.head_dim) +
         (c.qk_mode == QkMode::kQkNorm ? " qk-norm" : " random-qk");
}

// Five sequences: a prefill from 0, a decode at 0 (only itself), a decode at
// 5, a chunk at 77 whose first keys were freed, and a decode at 250 whose first
// 70-odd keys were freed. Rows 1 and 179 belong to nobody.
// Heads forget fast (log f in [-1, 0]), slowly ([-0.02, 0]) and in between.
Problem MakeRandomProblem(const Config& c, std::vector<float>* u_static) {
  const int32_t bs = c.block_size;
  std::vector<SeqSpec> specs = {
      {2, 0, 130, 0}, {0, 0, 1, 0}, {178, 5, 1, 0}, {132, 77, 45, 20 / bs}, {177, 250, 1, 70 / bs},
  };
  const int32_t num_heads = 3, d = c.head_dim;
  const double min_log_f[num_heads] = {-1.0, -0.02, -0.2};
  Problem p(specs, num_heads, d, bs, c.kv_dtype, 180);
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> weight(0.5f, 1.5f);
  // Per-head QK-norm weights and the static U they imply.
  std::vector<std::vector<float>> wq(num_heads, std::vector<float>(d));
  std::vector<std::vector<float>> wk(num_heads, std::vector<float>(d));
  u_static->assign(num_heads, 0.0f);
  for (int32_t h = 0; h < num_heads; ++h) {
    for (float& x : wq[h]) x = weight(rng);
    for (float& x : wk[h]) x = weight(rng);
    (*u_static)[h] = *std::max_element(wq[h].begin(), wq[h].end()) *
                     *std::max_element(wk[h].begin(), wk[h].end()) *
                     std::sqrt(static_cast<float>(d));
  }
  auto normalise = [&](float* x, const std::vector<float>& w) {
    if (c.qk_mode != QkMode::kQkNorm) return;
    double sq = 0.0;
    for (int i = 0; i < d; ++i) sq += double{x[i]} * x[i];
    const double inv = 1.0 / std::sqrt(sq / d + 1e-5);
    for (int i = 0; i < d; ++i) x[i] = static_cast<float>(x[i] * inv) * w[i];
  };
  for (size_t s = 0; s < specs.size(); ++s) {
    for (int32_t h = 0; h < num_heads; ++h) {
      HeadData& hd = p.data[s][h];
      const int64_t n = specs[s].last_pos() + 1;
      std::uniform_real_distribution<double> log_f(min_log_f[h], 0.0);
      double l = -3.0 * static_cast<double>(s);  // L need not start at 0
      for (int64_t pos = 0; pos < n; ++pos) {
        l += log_f(rng);
        hd.l.push_back(l);
      }
      hd.k.resize(n * d);
      hd.v.resize(n * d);
      for (float& x : hd.k) x = normal(rng);
      for (float& x : hd.v) x = normal(rng);
      for (int64_t pos = 0; pos < n; ++pos) normalise(hd.k.data() + pos * d, wk[h]);
    }
  }
  for (int64_t row = 0; row < p.num_rows(); ++row) {
    for (int32_t h = 0; h < num_heads; ++h) {
      float* x = p.q.data() + (row * num_heads + h) * d;
      for (int i = 0; i < d; ++i) x[i] = normal(rng);
      normalise(x, wq[h]);
    }
  }
  p.Store();
  return p;
}

bool IsQueryRow(const Problem& p, int64_t row) {
  for (const SeqSpec& s : p.specs()) {
    if (row >= s.row0 && row < s.row0 + s.num_queries) return true;
  }
  return false;
}

std::vector<Config> AllConfigs() {
  std::vector<Config> configs;
  uint64_t seed = 40;
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    for (int32_t bs : {1, 16, 64}) {
      for (QkMode mode : {QkMode::kRandom, QkMode::kQkNorm}) {
        configs.push_back({bs, dtype, mode, 64, ++seed});
      }
    }
  }
  configs.push_back({16, DType::kF32, QkMode::kRandom, 72, ++seed});  // vector tails
  return configs;
}

TEST(ForgetAttentionTest, MatchesDoubleReferenceWithoutAcp) {
  for (const Config& c : AllConfigs()) {
    std::vector<float> u_static;
    const Problem p = MakeRandomProblem(c, &u_static);
    AttentionCounters counters;
    const std::vector<float> out = p.Run(AcpOptions{}, &counters);
    const int d = p.head_dim();
    double worst = 0.0;
    int64_t expected_blocks = 0;
    for (size_t s = 0; s < p.specs().size(); ++s) {
      const SeqSpec& spec = p.specs()[s];
      for (int32_t i = 0; i < spec.num_queries; ++i) {
        for (int32_t h = 0; h < p.num_heads(); ++h) {
          const RefResult ref = Reference(p, static_cast<int>(s), i, h, -INFINITY);
          const float* o = out.data() + ((spec.row0 + i) * p.num_heads() + h) * d;
          const double err = RelativeError(o, ref.out_full);
          ASSERT_LT(err, 1e-5) << Describe(c) << " seq " << s << " query " << i << " head " << h;
          worst = std::max(worst, err);
          expected_blocks += ref.blocks_read;
        }
      }
    }
    // The decode at position 0 sees only itself: its output is its value.
    for (int32_t h = 0; h < p.num_heads(); ++h) {
      for (int c2 = 0; c2 < d; ++c2) {
        ASSERT_EQ(out[h * d + c2], p.data[1][h].v[c2]) << Describe(c);
      }
    }
    // Rows of no sequence are left alone.
    for (int64_t row = 0; row < p.num_rows(); ++row) {
      if (IsQueryRow(p, row)) continue;
      for (int64_t e = 0; e < p.num_heads() * d; ++e) {
        ASSERT_TRUE(std::isnan(out[row * p.num_heads() * d + e])) << "row " << row;
      }
    }
    EXPECT_EQ(counters.key_blocks_read, expected_blocks) << Describe(c);
    EXPECT_EQ(counters.key_blocks_skipped, 0) << Describe(c);
    EXPECT_GT(worst, 0.0) << Describe(c);  // the comparison saw real arithmetic
  }
}

// Each (query, head) is computed on its own: one thread or many, alone or in a
// batch with other sequences, the bits are the same.
TEST(ForgetAttentionTest, BatchAndThreadInvariant) {
  std::vector<float> u_static;
  const Problem p = MakeRandomProblem({16, DType::kBF16, QkMode::kRandom, 64, 7}, &u_static);
  AcpOptions acp;
  acp.enabled = true;
  const std::vector<float> batch = p.Run(acp);
  SetCpuNumThreads(1);
  const std::vector<float> one_thread = p.Run(acp);
  SetCpuNumThreads(0);
  const int64_t row_elems = p.num_heads() * p.head_dim();
  for (size_t s = 0; s < p.specs().size(); ++s) {
    const std::vector<float> alone = p.Run(acp, nullptr, static_cast<int32_t>(s), 1);
    const int64_t begin = p.specs()[s].row0 * row_elems;
    const int64_t n = p.specs()[s].num_queries * row_elems;
    EXPECT_EQ(std::memcmp(alone.data() + begin, batch.data() + begin, n * 4), 0) << "seq " << s;
    EXPECT_EQ(std::memcmp(one_thread.data() + begin, batch.data() + begin, n * 4), 0) << s;
  }
}

// ACP on random data, with U static (QK-norm) and from the data: per (query,
// head) the keys with D < delta carry less than eps of the softmax mass, the
// kernel's output is the softmax over the other keys, it moves by at most
// about 2 eps max|v| from the exact output, and the counters say exactly which
// blocks were skipped.
TEST(ForgetAttentionTest, AcpDropsLessThanEpsAndCountsBlocks) {
  for (const Config& c : AllConfigs()) {
    std::vector<float> u_static;
    const Problem p = MakeRandomProblem(c, &u_static);
    AcpOptions acp;
    acp.enabled = true;
    acp.log_eps = -10.0f;
    acp.u_static = c.qk_mode == QkMode::kQkNorm ? u_static.data() : nullptr;
    const double eps = std::exp(double{acp.log_eps});
    AttentionCounters counters;
    const std::vector<float> on = p.Run(acp, &counters);
    const std::vector<float> off = p.Run(AcpOptions{});
    const int d = p.head_dim();
    int64_t expected_read = 0, expected_skipped = 0, keys_dropped = 0;
    for (size_t s = 0; s < p.specs().size(); ++s) {
      const SeqSpec& spec = p.specs()[s];
      for (int32_t i = 0; i < spec.num_queries; ++i) {
        for (int32_t h = 0; h < p.num_heads(); ++h) {
          const std::string where = Describe(c) + " seq " + std::to_string(s) + " query " +
                                    std::to_string(i) + " head " + std::to_string(h);
          const double delta = AcpDelta(p, acp, static_cast<int>(s), i, h);
          const RefResult ref = Reference(p, static_cast<int>(s), i, h, delta);
          ASSERT_LT(ref.dropped_mass, eps) << where;
          const int64_t at = ((spec.row0 + i) * p.num_heads() + h) * d;
          ASSERT_LT(RelativeError(on.data() + at, ref.out_kept), 1e-5) << where;
          double max_v = 0.0, max_diff = 0.0;
          const HeadData& hd = p.data[s][h];
          for (int64_t j = int64_t{spec.first_block} * c.block_size; j <= spec.pos0 + i; ++j) {
            for (int c2 = 0; c2 < d; ++c2) {
              max_v = std::max(max_v, std::fabs(double{hd.v[j * d + c2]}));
            }
          }
          for (int c2 = 0; c2 < d; ++c2) {
            max_diff = std::max(max_diff, std::fabs(double{on[at + c2]} - off[at + c2]));
          }
          ASSERT_LE(max_diff, (2.0 * eps + 1e-6) * max_v) << where;
          expected_read += ref.blocks_read;
          expected_skipped += ref.blocks_skipped;
          keys_dropped += ref.num_dropped;
        }
      }
    }
    EXPECT_EQ(counters.key_blocks_read, expected_read) << Describe(c);
    EXPECT_EQ(counters.key_blocks_skipped, expected_skipped) << Describe(c);
    // The fast-forgetting head makes ACP do real work in every configuration.
    EXPECT_GT(counters.key_blocks_skipped, 0) << Describe(c);
    EXPECT_GT(keys_dropped, 300) << Describe(c);
  }
}

// Keys that ACP drops, and keys of freed blocks, are never read: with their
// K and V poisoned to NaN the output is bit-for-bit what it was.
TEST(ForgetAttentionTest, DroppedAndFreedKeysAreNeverRead) {
  for (int32_t bs : {1, 16, 64}) {
    for (DType dtype : {DType::kF32, DType::kBF16}) {
      std::vector<float> u_static;
      Problem p = MakeRandomProblem({bs, dtype, QkMode::kQkNorm, 64, 90u + bs}, &u_static);
      AcpOptions acp;
      acp.enabled = true;
      acp.u_static = u_static.data();
      const std::vector<float> clean = p.Run(acp);
      // The single decode queries (sequences 2 and 4) read nothing another
      // query needs, so every key they drop can be poisoned. Keys within 1e-3
      // of the threshold are left alone to stay clear of rounding.
      int64_t poisoned = 0;
      for (int s : {2, 4}) {
        const SeqSpec& spec = p.specs()[s];
        for (int32_t h = 0; h < p.num_heads(); ++h) {
          const double delta = AcpDelta(p, acp, s, 0, h);
          const HeadData& hd = p.data[s][h];
          for (int64_t j = int64_t{spec.first_block} * bs; j <= spec.pos0; ++j) {
            if (hd.l[spec.pos0] - hd.l[j] < delta - 1e-3) {
              p.PoisonToken(s, h, j);
              ++poisoned;
            }
          }
        }
      }
      ASSERT_GT(poisoned, 50) << "block size " << bs;
      const std::vector<float> after = p.Run(acp);
      for (int s : {2, 4}) {
        const int64_t row_elems = p.num_heads() * p.head_dim();
        const int64_t begin = p.specs()[s].row0 * row_elems;
        for (int64_t e = begin; e < begin + row_elems; ++e) {
          ASSERT_TRUE(std::isfinite(after[e])) << "bs " << bs << " seq " << s;
          ASSERT_EQ(after[e], clean[e]) << "bs " << bs << " seq " << s;
        }
      }
    }
  }
}

// A case small enough to count by hand. Block size 4, 16 tokens, prefill of
// all 16; head 0 forgets with log f = -1 (L_t = -(t + 1)), head 1 keeps
// everything (log f = 0). U = 0.5 and log_eps = -3, so for query i
//   delta_i = -1 - log(i + 1) - 3,  and key j is dropped when i - j > 4 + log(i + 1):
//   i      :  6     7     8     9    10    11    12    13    14    15
//   i-4-log: 0.05  0.92  1.80  2.70  3.60  4.52  5.43  6.36  7.29  8.23
// Block 0 (newest key 3) is skipped for i = 10..15 (6 queries), block 1
// (newest key 7) for i = 14, 15 (2 queries): 8 skipped. The queries see
// 4 * 1 + 4 * 2 + 4 * 3 + 4 * 4 = 40 blocks per head, so head 0 reads 32 and
// head 1 reads 40. Partly dropped blocks still count as read: key 0 for i = 6,
// keys 0..1 for i = 8, keys 4..5 besides block 0 for i = 12.
TEST(ForgetAttentionTest, AcpCountsMatchHandCountedCase) {
  const int32_t num_heads = 2, d = 8, bs = 4, n = 16;
  Problem p({{0, 0, n, 0}}, num_heads, d, bs, DType::kF32, n);
  std::mt19937_64 rng(5);
  // Small q and k keep |q.k| / sqrt(d) below U = 0.5, as U promises.
  std::uniform_real_distribution<float> small(-0.2f, 0.2f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int32_t h = 0; h < num_heads; ++h) {
    HeadData& hd = p.data[0][h];
    for (int64_t t = 0; t < n; ++t) hd.l.push_back(h == 0 ? -(t + 1.0) : 0.0);
    hd.k.resize(n * d);
    hd.v.resize(n * d);
    for (float& x : hd.k) x = small(rng);
    for (float& x : hd.v) x = normal(rng);
  }
  for (float& x : p.q) x = small(rng);
  p.Store();
  const float u_static[num_heads] = {0.5f, 0.5f};
  AcpOptions acp;
  acp.enabled = true;
  acp.log_eps = -3.0f;
  acp.u_static = u_static;

  AttentionCounters both;
  const std::vector<float> out = p.Run(acp, &both);
  EXPECT_EQ(both.key_blocks_skipped, 8);
  EXPECT_EQ(both.key_blocks_read, 32 + 40);
  // The same through the reference's own count, per query, and the dropped
  // keys of the partly kept blocks as the table above says.
  const int64_t expected_dropped[n] = {0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (int32_t i = 0; i < n; ++i) {
    const RefResult ref = Reference(p, 0, i, 0, AcpDelta(p, acp, 0, i, 0));
    EXPECT_EQ(ref.num_dropped, expected_dropped[i]) << "query " << i;
    EXPECT_LT(RelativeError(out.data() + (i * num_heads) * d, ref.out_kept), 1e-5) << i;
    EXPECT_LT(ref.dropped_mass, std::exp(-3.0)) << i;
  }
  // Counters accumulate across calls.
  p.Run(acp, &both);
  EXPECT_EQ(both.key_blocks_skipped, 16);
  EXPECT_EQ(both.key_blocks_read, 144);
}

// The worst case the bound allows: q.k / sqrt(d) = +U on the m old keys and
// -U on the query's own, all old keys at the same decay D, just below or just
// above the threshold of the query at position m. Dropping them then costs
// nearly eps (m / (m + 1) of it), so a kernel whose delta were larger (e.g.
// -U instead of -2U, or log(i) instead of log(i + 1)) would drop the
// above-threshold keys too, and one whose delta were smaller would not drop
// the below-threshold keys. Checked with U static and from the data.
TEST(ForgetAttentionTest, AcpThresholdIsTightInTheWorstCase) {
  const int32_t d = 16, bs = 4, m = 100;
  const float a = 4.0f;  // q = a * e, old keys = a * e, new keys = -a * e, |e| = 1
  const double u = a * a / std::sqrt(double(d));  // = 4 exactly
  const double log_eps = -10.0;
  const double eps = std::exp(log_eps);
  const double delta_m = -2.0 * u - std::log(m + 1.0) + log_eps;
  for (const bool static_u : {true, false}) {
    for (const double margin : {-1e-3, 1e-3}) {
      const std::string where =
          std::string(static_u ? "static U" : "data U") + (margin < 0 ? " below" : " above");
      // Queries at m and m + 1; keys 0..m-1 old (L = 0), m.. new (L = jump).
      Problem p({{0, m, 2, 0}}, 1, d, bs, DType::kF32, 2);
      const double jump = delta_m + margin;
      HeadData& hd = p.data[0][0];
      for (int64_t t = 0; t <= m + 1; ++t) {
        hd.l.push_back(t < m ? 0.0 : jump);
        for (int c = 0; c < d; ++c) {
          hd.k.push_back((t < m ? a : -a) / 4.0f);  // e = (1/4, ..., 1/4)
          hd.v.push_back(t < m ? 1.0f : -1.0f);
        }
      }
      for (float& x : p.q) x = a / 4.0f;
      p.Store();
      const float u_static = static_cast<float>(u);
      AcpOptions acp;
      acp.enabled = true;
      acp.log_eps = static_cast<float>(log_eps);
      acp.u_static = static_u ? &u_static : nullptr;
      AttentionCounters counters;
      const std::vector<float> on = p.Run(acp, &counters);
      const std::vector<float> off = p.Run(AcpOptions{});
      ASSERT_DOUBLE_EQ(AcpDelta(p, acp, 0, 0, 0), delta_m) << where;
      const RefResult ref0 = Reference(p, 0, 0, 0, delta_m);
      // Query m + 1 has a lower threshold (log(m + 2)): it keeps all keys.
      const double delta_m1 = AcpDelta(p, acp, 0, 1, 0);
      const RefResult ref1 = Reference(p, 0, 1, 0, delta_m1);
      EXPECT_EQ(ref1.num_dropped, 0) << where;
      EXPECT_EQ(counters.key_blocks_read, (margin < 0 ? 1 : 26) + 26) << where;
      EXPECT_EQ(counters.key_blocks_skipped, margin < 0 ? 25 : 0) << where;
      for (int32_t i = 0; i < 2; ++i) {
        const RefResult& ref = i == 0 ? ref0 : ref1;
        EXPECT_LT(
            RelativeError(on.data() + i * d, margin < 0 && i == 0 ? ref.out_kept : ref.out_full),
            1e-5)
            << where << " query " << i;
        EXPECT_LT(RelativeError(off.data() + i * d, ref.out_full), 1e-5) << where;
      }
      if (margin < 0) {
        EXPECT_EQ(ref0.num_dropped, m) << where;
        // Below eps, and close to it: the bound is nearly attained.
        EXPECT_LT(ref0.dropped_mass, eps) << where;
        EXPECT_GT(ref0.dropped_mass, 0.98 * eps) << where;
        // The output moves by 2 * dropped mass * |v|, just under 2 eps max|v|.
        for (int c = 0; c < d; ++c) {
          const double diff = std::fabs(double{on[c]} - off[c]);
          EXPECT_LE(diff, 2.0 * eps) << where;
          EXPECT_GT(diff, 1.9 * eps) << where;
          EXPECT_EQ(on[c], -1.0f) << where;
        }
      } else {
        EXPECT_EQ(ref0.num_dropped, 0) << where;
        EXPECT_EQ(std::memcmp(on.data(), off.data(), on.size() * 4), 0) << where;
      }
    }
  }
}

}  // namespace
}  // namespace fox::cpu
