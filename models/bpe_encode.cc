// BytePairEncoder::Encode, the hot path: the merge loop for one word and a
// per-call cache of words already encoded.
#include <algorithm>
#include <cstring>
#include <functional>

#include "models/bpe.h"
#include "models/pretokenizer.h"

namespace fox {

// Merges one word. The reference algorithm (GPT-2's encoder.py) repeatedly
// takes the lowest-ranked adjacent pair and merges all its non-overlapping
// occurrences left to right. This does the same in O(n log n): symbols form a
// linked list, candidate pairs sit in a min-heap ordered by (rank, position),
// and all candidates of the lowest rank are taken as one batch before the new
// pairs they create are pushed, so a merge never jumps ahead of its round.
// Scratch vectors are reused across words; one instance per thread.
class BytePairEncoder::WordEncoder {
 public:
  explicit WordEncoder(const BytePairEncoder& bpe) : bpe_(bpe) {}

  void Encode(std::string_view word, std::vector<int32_t>* ids) {
    const int n = static_cast<int>(word.size());
    symbols_.resize(n);
    heap_.clear();
    for (int i = 0; i < n; ++i) {
      symbols_[i] = {bpe_.byte_ids_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
    }
    for (int i = 0; i + 1 < n; ++i) PushPair(i);
    std::make_heap(heap_.begin(), heap_.end(), std::greater<>());
    while (!heap_.empty()) MergeLowestRank();
    for (int i = 0; i >= 0; i = symbols_[i].next) ids->push_back(symbols_[i].id);
  }

 private:
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;  // the left symbol
    int32_t left_id;
    int32_t right_id;
    int32_t merged_id;
    // Lowest rank first, then leftmost.
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };

  // Adds the pair starting at symbol `pos` to the heap (unordered) if it merges.
  void PushPair(int32_t pos) {
    const int32_t next = symbols_[pos].next;
    if (next < 0) return;
    const int32_t left = symbols_[pos].id;
    const int32_t right = symbols_[next].id;
    const PairRankMap::Merge merge = bpe_.merges_.Find(left, right);
    if (merge.rank != PairRankMap::kNoRank) {
      heap_.push_back({merge.rank, pos, left, right, merge.merged_id});
    }
  }

  void PushAndSift(int32_t pos) {
    const size_t size = heap_.size();
    PushPair(pos);
    if (heap_.size() > size) std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  }

  void MergeLowestRank() {
    const int32_t rank = heap_.front().rank;
    merged_.clear();
    // Pops come out in position order, so merges go left to right; a stale
    // candidate (a symbol changed or gone since it was pushed) is skipped,
    // which also keeps overlapping occurrences (a a a) from both merging.
    while (!heap_.empty() && heap_.front().rank == rank) {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
      const Candidate c = heap_.back();
      heap_.pop_back();
      Symbol& left = symbols_[c.pos];
      if (left.id != c.left_id || left.next < 0 || symbols_[left.next].id != c.right_id) continue;
      Symbol& right = symbols_[left.next];
      left.id = c.merged_id;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = c.pos;
      right.id = -1;
      merged_.push_back(c.pos);
    }
    for (int32_t pos : merged_) {
      if (symbols_[pos].id < 0) continue;
      if (symbols_[pos].prev >= 0) PushAndSift(symbols_[pos].prev);
      PushAndSift(pos);
    }
  }

  const BytePairEncoder& bpe_;
  std::vector<Symbol> symbols_;
  std::vector<Candidate> heap_;
  std::vector<int32_t> merged_;
};

// Natural text repeats its words, so one Encode call remembers the ids of the
// words it has encoded. The table lives for one call (no locking, nothing to
// evict between requests) and grows from a size that costs nothing for a
// short prompt. Keys point into the caller's text.
class BytePairEncoder::WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 48;  // longer words are rare: not kept
  static constexpr size_t kMaxEntries = size_t{1} << 16;

  // Appends the cached ids of `word` to `*ids`; false if it is not cached.
  bool Lookup(std::string_view word, uint64_t hash, std::vector<int32_t>* ids) const {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.word_size == 0) return false;
      if (e.hash == hash && e.word_size == word.size() && SameBytes(e.word, word)) {
        ids->insert(ids->end(), ids_.begin() + e.ids_begin, ids_.begin() + e.ids_end);
        return true;
      }
    }
  }

  void Insert(std::string_view word, uint64_t hash, const int32_t* ids, size_t num_ids) {
    if (2 * (size_ + 1) > entries_.size()) {
      if (entries_.size() >= 2 * kMaxEntries) {
        Clear();
      } else {
        Grow();
      }
    }
    Entry e{word.data(), static_cast<uint32_t>(word.size()), static_cast<uint32_t>(ids_.size()),
            static_cast<uint32_t>(ids_.size() + num_ids), hash};
    ids_.insert(ids_.end(), ids, ids + num_ids);
    Place(e);
    ++size_;
  }

  // Words are short (5 bytes on average): a loop beats a call to memcmp.
  static bool SameBytes(const char* a, std::string_view b) {
    for (size_t i = 0; i < b.size(); ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }

  static uint64_t Hash(std::string_view word) {
    uint64_t h = 0x243F6A8885A308D3ull ^ word.size();
    size_t pos = 0;
    for (; pos + 8 <= word.size(); pos += 8) {
      uint64_t chunk;
      std::memcpy(&chunk, word.data() + pos, 8);
      h = (h ^ chunk) * 0x9E3779B97F4A7C15ull;
      h ^= h >> 29;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, word.data() + pos, word.size() - pos);
    h = (h ^ tail) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
  }

 private:
  struct Entry {
    const char* word = nullptr;
    uint32_t word_size = 0;  // 0 marks an empty slot (words are never empty)
    uint32_t ids_begin = 0;
    uint32_t ids_end = 0;
    uint64_t hash = 0;
  };

  void Place(const Entry& e) {
    size_t i = e.hash & mask_;
    while (entries_[i].word_size != 0) i = (i + 1) & mask_;
    entries_[i] = e;
  }
  void Grow() {
    std::vector<Entry> old = std::move(entries_);
    entries_.assign(old.size() * 2, Entry{});
    mask_ = entries_.size() - 1;
    for (const Entry& e : old) {
      if (e.word_size != 0) Place(e);
    }
  }
  void Clear() {
    std::fill(entries_.begin(), entries_.end(), Entry{});
    ids_.clear();
    size_ = 0;
  }

  std::vector<Entry> entries_ = std::vector<Entry>(64);
  size_t mask_ = 63;
  size_t size_ = 0;
  std::vector<int32_t> ids_;
};

void BytePairEncoder::Encode(std::string_view text, std::vector<int32_t>* ids) const {
  WordEncoder encoder(*this);
  WordCache cache;
  Gpt2WordSplitter words(text);
  for (std::string_view word; words.Next(&word);) {
    if (word.size() == 1) {
      ids->push_back(byte_ids_[static_cast<uint8_t>(word[0])]);
      continue;
    }
    const bool cacheable = word.size() <= WordCache::kMaxWordBytes;
    const uint64_t hash = cacheable ? WordCache::Hash(word) : 0;
    if (cacheable && cache.Lookup(word, hash, ids)) continue;
    const size_t first = ids->size();
    encoder.Encode(word, ids);
    if (cacheable) cache.Insert(word, hash, ids->data() + first, ids->size() - first);
  }
}

}  // namespace fox
