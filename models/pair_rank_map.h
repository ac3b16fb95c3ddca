// The merge table of a byte-pair encoder: (left id, right id) -> (rank, merged
// id), as a flat open-addressing hash table. Lookups are the inner loop of BPE;
// a flat table of 16-byte slots keeps each one to about one cache miss.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace fox {

class PairRankMap {
 public:
  static constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

  struct Merge {
    int32_t rank = kNoRank;  // kNoRank: the pair does not merge
    int32_t merged_id = -1;
  };

  // Sizes the table for `count` pairs; call before the Insert()s.
  void Reserve(size_t count) {
    size_t capacity = 16;
    while (capacity < 2 * count) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
  }

  // Inserts or overwrites: a pair listed twice keeps its last rank, as
  // Python's dict(zip(merges, range(...))) does in the reference tokenizer.
  void Insert(int32_t left, int32_t right, Merge merge) {
    const uint64_t key = Key(left, right);
    for (size_t i = Hash(key);; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.key == kEmptyKey || slot.key == key) {
        slot = {key, merge};
        return;
      }
    }
  }

  Merge Find(int32_t left, int32_t right) const {
    const uint64_t key = Key(left, right);
    for (size_t i = Hash(key);; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return slot.merge;
      if (slot.key == kEmptyKey) return Merge{};
    }
  }

 private:
  // Ids are non-negative, so no real pair has all 64 bits set.
  static constexpr uint64_t kEmptyKey = ~uint64_t{0};

  struct Slot {
    uint64_t key = kEmptyKey;
    Merge merge;
  };

  static uint64_t Key(int32_t left, int32_t right) {
    return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
  }
  size_t Hash(uint64_t key) const {
    // Fibonacci hashing: the high bits of the product mix all input bits.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
  }

  std::vector<Slot> slots_ = std::vector<Slot>(16);
  size_t mask_ = 15;
};

}  // namespace fox
