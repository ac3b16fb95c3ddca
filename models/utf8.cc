#include "models/utf8.h"

namespace fox {
namespace {

// Length of the well-formed sequence that `lead` starts, 0 for a byte that
// cannot start one (continuation bytes, C0/C1 overlong leads, F5..FF).
int SequenceLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

// The allowed range of the byte after `lead`; later bytes are always 80..BF.
// The narrower ranges exclude overlongs (E0, F0), surrogates (ED) and code
// points past U+10FFFF (F4).
bool IsValidSecondByte(uint8_t lead, uint8_t byte) {
  switch (lead) {
    case 0xE0:
      return byte >= 0xA0 && byte <= 0xBF;
    case 0xED:
      return byte >= 0x80 && byte <= 0x9F;
    case 0xF0:
      return byte >= 0x90 && byte <= 0xBF;
    case 0xF4:
      return byte >= 0x80 && byte <= 0x8F;
    default:
      return byte >= 0x80 && byte <= 0xBF;
  }
}

// Checks the sequence at text[pos]. Returns its length when well-formed;
// otherwise 0 and sets `*valid_prefix` to the length of the maximal subpart
// (the longest prefix that could still have become well-formed) and
// `*truncated` when that prefix runs into the end of `text`.
int CheckSequence(std::string_view text, size_t pos, int* valid_prefix, bool* truncated) {
  const uint8_t lead = static_cast<uint8_t>(text[pos]);
  const int length = SequenceLength(lead);
  *truncated = false;
  if (length == 0) {
    *valid_prefix = 1;
    return 0;
  }
  for (int k = 1; k < length; ++k) {
    if (pos + k >= text.size()) {
      *valid_prefix = k;
      *truncated = true;
      return 0;
    }
    const uint8_t byte = static_cast<uint8_t>(text[pos + k]);
    const bool ok = k == 1 ? IsValidSecondByte(lead, byte) : (byte >= 0x80 && byte <= 0xBF);
    if (!ok) {
      *valid_prefix = k;
      return 0;
    }
  }
  return length;
}

}  // namespace

size_t FindInvalidUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    int prefix = 0;
    bool truncated = false;
    const int length = CheckSequence(text, pos, &prefix, &truncated);
    if (length == 0) return pos;
    pos += length;
  }
  return std::string_view::npos;
}

char32_t DecodeUtf8(std::string_view text, size_t pos, int* length) {
  const auto byte = [&](int k) { return static_cast<uint8_t>(text[pos + k]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) {
    *length = 1;
    return lead;
  }
  if (lead < 0xE0) {
    *length = 2;
    return ((lead & 0x1F) << 6) | (byte(1) & 0x3F);
  }
  if (lead < 0xF0) {
    *length = 3;
    return ((lead & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
  }
  *length = 4;
  return ((lead & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) |
         (byte(3) & 0x3F);
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

size_t AppendUtf8Lossy(std::string_view bytes, bool final, std::string* out) {
  size_t pos = 0;
  size_t copied_up_to = 0;  // well-formed bytes are copied in runs
  while (pos < bytes.size()) {
    if (static_cast<uint8_t>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    int prefix = 0;
    bool truncated = false;
    const int length = CheckSequence(bytes, pos, &prefix, &truncated);
    if (length > 0) {
      pos += length;
      continue;
    }
    out->append(bytes.data() + copied_up_to, pos - copied_up_to);
    if (truncated && !final) return pos;
    out->append(kReplacementUtf8);
    pos += prefix;
    copied_up_to = pos;
  }
  out->append(bytes.data() + copied_up_to, pos - copied_up_to);
  return pos;
}

}  // namespace fox
