// Text for the tokenizer tests: hand-written samples that cover what the
// escaping and the pre-tokenizer treat specially (several scripts, emoji with
// ZWJ sequences, whitespace runs, quotes and backslashes, every control
// character, DEL, U+2028, astral code points, contractions), and random
// mixtures of them. Header-only: tests/models/*_test.cc all share it.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "models/utf8.h"

namespace fox::testing {

inline std::vector<std::string> TokenizerSamples() {
  std::vector<std::string> samples = {
      "Hello, world!",
      "The quick brown fox jumps over the lazy dog. It's 3:45pm; we'll see, won't we? I'd "
      "say they're fine, you've seen 'em.",
      "He said \"don't\" and she said 'isn't', 'S 'T 'RE (uppercase contractions split).",
      "  leading spaces, trailing spaces   ",
      "tabs\tand\nnewlines\r\nand\x0b vertical\x0c feeds\n\n\n  \n\t\t",
      "multiple     spaces    between\u3000ideographic\u00a0nbsp",
      "back\\slash \\n not a newline, \\u00e9 not an e, C:\\path\\to\\file, \"\\\"\"",
      "int main(int argc, char** argv) {\n  std::printf(\"%d\\n\", argc);\n  return 0;\n}\n",
      "def f(x):\n    return {'a': [1, 2.5e-3, None], \"b\": x ** 2}  # comment\n",
      "{\"key\": \"value\", \"list\": [1, 2, 3], \"nested\": {\"a\": null}},\"x\",\"y\"",
      "Numbers: 0 7 42 1234567890 3.14159 -273.15 1e10 0x1F 1,000,000 ①②③ ½ Ⅻ ٣ ४२",
      "Ünïcödé Latin: café, naïve, résumé, Ångström, straße, œuvre, ĳ, Ǆ",
      "Русский текст: Съешь же ещё этих мягких французских булок, да выпей чаю.",
      "العربية: نص عربي مع أرقام ١٢٣ وعلامات ترقيم، أليس كذلك؟",
      "हिन्दी: यह एक परीक्षण वाक्य है। संख्या १२३४",
      "中文：我能吞下玻璃而不伤身体。日本語：私はガラスを食べられます。한국어: 나는 유리를 먹을 수 "
      "있어요.",
      "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷🇩🇪 🧑🏿‍💻 ✌︎ "
      "©®™",
      "Astral: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 𐍈 𓀀 🀄 𠜎𠜱𠝹 (math, Gothic, hieroglyph, CJK ext B)",
      "Separators: line\u2028separator paragraph\u2029separator",
      "Combining: e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937 (decomposed)",
      "Zero width: a\u200bb c\u200dd e\u200cf \u2060word",
      "Math & symbols: ∀x∈ℝ: x² ≥ 0 → √(x²)=|x|; ∑ᵢ aᵢ ≈ π ± ε; ≠ ≤ ∞ … — – «»",
      "Punctuation runs: !!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
      "<|endoftext|> is just text here, and so is <|endoftext|><|endoftext|>.",
      "URL: https://example.com/path?query=a&b=c#frag and email: user@example.org",
      "Mixed123abc456 ABC-def_ghi.jkl snake_case camelCase PascalCase SCREAMING_CASE",
      "'s 't 're 've 'm 'll 'd 'x '' ''' it'''s 'sa'tb",
      "a",
      " ",
      "  ",
      "\n",
      "''",
      "'",
      "\\",
      "\"",
      "x ",
      " x",
      "\t x",
      " \n x",
      "endoftext",
      "DEL:\x7f! and more\x7f\x7f",
  };
  std::string controls = "Controls:";
  for (int c = 0; c < 0x20; ++c) {
    controls.push_back(static_cast<char>(c));
    controls += "x";
  }
  samples.push_back(controls);
  samples.push_back(std::string("NUL\0in the middle", 17));
  return samples;
}

// Random code points drawn from ranges that exercise each tokenizer stage.
// `allow_unusual_spaces` adds U+0085 and U+FEFF, whose class differs between
// Unicode's White_Space (used here) and JavaScript's \s (see tokenizer_js_test).
inline std::string RandomText(std::mt19937& rng, int num_code_points,
                              bool allow_unusual_spaces = true) {
  static constexpr char32_t kRanges[][2] = {
      {'a', 'z'},           {'A', 'Z'},         {'0', '9'},         {' ', ' '},
      {' ', '/'},           {':', '@'},         {'[', '`'},         {'{', '~'},
      {0x00, 0x1F},         {0x7F, 0x7F},       {0xA0, 0xFF},       {0x0100, 0x017F},
      {0x0400, 0x04FF},     {0x0600, 0x06FF},   {0x0900, 0x097F},   {0x2000, 0x206F},
      {0x3000, 0x303F},     {0x4E00, 0x4FFF},   {0xAC00, 0xAD00},   {0xE000, 0xE010},
      {0xFF00, 0xFFFD},     {0x1F300, 0x1F6FF}, {0x1D400, 0x1D7FF}, {0x20000, 0x200FF},
      {0x10FFF0, 0x10FFFF}, {'\'', '\''},       {'\\', '\\'},       {'"', '"'},
      {'\n', '\n'},
  };
  constexpr int kNumRanges = sizeof(kRanges) / sizeof(kRanges[0]);
  std::uniform_int_distribution<int> pick_range(0, kNumRanges + 1);
  std::string text;
  for (int i = 0; i < num_code_points; ++i) {
    const int r = pick_range(rng);
    char32_t c;
    if (r >= kNumRanges) {
      c = (r == kNumRanges || !allow_unusual_spaces) ? char32_t{0x2028}
                                                     : (rng() % 2 ? char32_t{0x85} : 0xFEFF);
    } else {
      c = std::uniform_int_distribution<uint32_t>(kRanges[r][0], kRanges[r][1])(rng);
    }
    if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
    AppendUtf8(c, &text);
  }
  return text;
}

// Random mixtures: pieces of the samples glued with random text.
inline std::vector<std::string> RandomTexts(int count, uint32_t seed,
                                            bool allow_unusual_spaces = true) {
  const std::vector<std::string> samples = TokenizerSamples();
  std::mt19937 rng(seed);
  std::vector<std::string> texts;
  for (int i = 0; i < count; ++i) {
    std::string text;
    const int parts = 1 + rng() % 4;
    for (int p = 0; p < parts; ++p) {
      if (rng() % 2) {
        text += samples[rng() % samples.size()];
      } else {
        text += RandomText(rng, 1 + rng() % 40, allow_unusual_spaces);
      }
    }
    texts.push_back(std::move(text));
  }
  return texts;
}

}  // namespace fox::testing
