#include "models/safetensors.h"

#include <cstring>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "models/checkpoint_writer.h"
#include "tests/support/temp_dir.h"

namespace fox {
namespace {

using testing::TempDir;
using testing::WriteFileOrDie;

// Assembles a safetensors file by hand: 8-byte length, header, data.
std::string MakeFile(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

std::string Floats(std::initializer_list<float> values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

absl::Status OpenStatus(const TempDir& dir, const std::string& contents) {
  WriteFileOrDie(dir.File("x.safetensors"), contents);
  return SafetensorsFile::Open(dir.File("x.safetensors")).status();
}

// Expects Open to fail with InvalidArgument mentioning `needle` and the path.
void ExpectRejected(const std::string& contents, const std::string& needle) {
  TempDir dir;
  absl::Status status = OpenStatus(dir, contents);
  ASSERT_FALSE(status.ok()) << "accepted; expected: " << needle;
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(needle), std::string::npos) << status;
  EXPECT_NE(status.message().find(dir.File("x.safetensors")), std::string::npos) << status;
}

TEST(SafetensorsTest, ReadsAHandMadeFile) {
  TempDir dir;
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},)"
      R"("a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"s":{"dtype":"F32","shape":[],"data_offsets":[20,24]},)"
      R"("e":{"dtype":"I64","shape":[0,5],"data_offsets":[24,24]}})";
  const std::string bf16("\x80\x3f\x00\x40\x40\x40\x80\x40", 8);  // 1, 2, 3, 4
  WriteFileOrDie(dir.File("x.safetensors"),
                 MakeFile(header, bf16 + Floats({0.5f, -1.5f, 7.0f}) + Floats({9.0f})));
  absl::StatusOr<std::shared_ptr<const SafetensorsFile>> file =
      SafetensorsFile::Open(dir.File("x.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->tensors().size(), 4u);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  const SafetensorsTensor* a = (*file)->Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, "BF16");
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a->num_bytes, 8);
  uint16_t a_bits[4];  // the unpadded header leaves the data unaligned
  std::memcpy(a_bits, a->data, sizeof(a_bits));
  float a_values[4];
  ConvertToF32(a_bits, DType::kBF16, 4, a_values);
  EXPECT_EQ(a_values[3], 4.0f);
  const SafetensorsTensor* b = (*file)->Find("b");
  float b_values[3];
  std::memcpy(b_values, b->data, 12);
  EXPECT_EQ(b_values[1], -1.5f);
  EXPECT_EQ((*file)->Find("s")->shape, std::vector<int64_t>{});
  EXPECT_EQ((*file)->Find("e")->num_bytes, 0);
  EXPECT_EQ((*file)->Find("missing"), nullptr);
}

TEST(SafetensorsTest, MissingFileAndDirectory) {
  TempDir dir;
  EXPECT_EQ(SafetensorsFile::Open(dir.File("nope")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(SafetensorsFile::Open(dir.path()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SafetensorsTest, ShorterThanTheLengthField) {
  ExpectRejected("", "truncated");
  ExpectRejected(std::string("\x02\0\0\0", 4), "truncated");
}

TEST(SafetensorsTest, HeaderLengthLargerThanFile) {
  std::string file =
      MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", Floats({1}));
  file[0] = static_cast<char>(0xff);
  file[1] = static_cast<char>(0x7f);
  ExpectRejected(file, "exceeds the file");
  std::string huge = file;
  for (int i = 0; i < 8; ++i) huge[i] = static_cast<char>(0xff);  // 2^64 - 1: must not wrap around
  ExpectRejected(huge, "exceeds the file");
}

TEST(SafetensorsTest, MalformedHeader) {
  ExpectRejected(MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})", Floats({1})),
                 "malformed JSON");
  ExpectRejected(MakeFile("", ""), "malformed JSON");
  ExpectRejected(MakeFile(std::string("{\"a\"\0}", 6), ""), "malformed JSON");
  ExpectRejected(MakeFile("[1,2]", ""), "not a JSON object");
  ExpectRejected(MakeFile(R"({"a":[1]})", ""), "not an object");
  ExpectRejected(MakeFile(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", Floats({1})), "dtype");
  ExpectRejected(MakeFile(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", Floats({1})), "shape");
  ExpectRejected(MakeFile(R"({"a":{"dtype":"F32","shape":[1]}})", Floats({1})), "data_offsets");
  ExpectRejected(MakeFile(R"({"__metadata__":{"format":1}})", ""), "__metadata__");
  ExpectRejected(MakeFile(R"({"__metadata__":[]})", ""), "__metadata__");
  // Nesting is refused while parsing: 100,000 levels cannot reach a
  // recursive walk.
  ExpectRejected(MakeFile("{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}", ""),
                 "deeper than 8 levels");
  ExpectRejected(MakeFile(std::string(100000, '{'), ""), "malformed JSON");
}

TEST(SafetensorsTest, DuplicateTensorNames) {
  ExpectRejected(MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          Floats({1, 2})),
                 "duplicate key 'a'");
}

TEST(SafetensorsTest, UnknownDtype) {
  ExpectRejected(MakeFile(R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", Floats({1})),
                 "unknown dtype 'F33'");
}

TEST(SafetensorsTest, BadShapes) {
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", Floats({1})),
      "dimension");
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", Floats({1})),
      "dimension");
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", Floats({1})),
      "dimension");
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
               Floats({1})),
      "too large");
}

TEST(SafetensorsTest, DataLengthMustMatchShapeTimesDtype) {
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", Floats({1, 2})),
      "holds 4 bytes");
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})", Floats({1, 2})),
      "needs 4");
}

TEST(SafetensorsTest, OffsetsOutOfRange) {
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", Floats({1, 2})),
      "outside the 8-byte data section");
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", Floats({1, 2})),
      "bad data_offsets");
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", Floats({1, 2})),
      "bad data_offsets");
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", Floats({1, 2})),
      "data_offsets");
  ExpectRejected(
      MakeFile(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[18446744073709551612,0]}})",
               Floats({1, 2})),
      "bad data_offsets");
  ExpectRejected(
      MakeFile(
          R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[9223372036854775807,9223372036854775807]}})",
          Floats({1, 2})),
      "outside");
}

TEST(SafetensorsTest, OverlappingTensors) {
  ExpectRejected(MakeFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                          Floats({1, 2, 3})),
                 "overlap");
  ExpectRejected(MakeFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})",
                          Floats({1, 2})),
                 "overlap");
}

TEST(SafetensorsTest, EveryTruncationOfAValidFileIsRejected) {
  TempDir dir;
  TensorMap tensors = {{"w", {{3, 5}, std::vector<float>(15, 0.25f)}},
                       {"b", {{7}, std::vector<float>(7, -2.0f)}}};
  ASSERT_TRUE(WriteSafetensors(dir.File("full.safetensors"), tensors, DType::kBF16).ok());
  const std::string full = testing::ReadFileOrDie(dir.File("full.safetensors"));
  ASSERT_TRUE(SafetensorsFile::Open(dir.File("full.safetensors")).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    absl::Status status = OpenStatus(dir, full.substr(0, n));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << "prefix of " << n << " bytes: " << status;
  }
}

// Random corruption of header bytes must never yield a tensor outside the file.
TEST(SafetensorsTest, CorruptedHeadersNeverPointOutsideTheFile) {
  TempDir dir;
  TensorMap tensors = {{"w", {{4, 4}, std::vector<float>(16, 1.0f)}},
                       {"v", {{3}, std::vector<float>(3, 2.0f)}}};
  ASSERT_TRUE(WriteSafetensors(dir.File("full.safetensors"), tensors, DType::kF32).ok());
  const std::string full = testing::ReadFileOrDie(dir.File("full.safetensors"));
  std::mt19937 rng(7);
  const char alphabet[] = "0123456789,[]{}\":-. FBIU";
  int accepted = 0;
  for (int trial = 0; trial < 1000; ++trial) {
    std::string mutated = full;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = 8 + rng() % (full.size() - 8 - 19 * 4);  // inside the header
      mutated[pos] = alphabet[rng() % (sizeof(alphabet) - 1)];
    }
    WriteFileOrDie(dir.File("m.safetensors"), mutated);
    absl::StatusOr<std::shared_ptr<const SafetensorsFile>> file =
        SafetensorsFile::Open(dir.File("m.safetensors"));
    if (!file.ok()) continue;
    ++accepted;
    // Every accepted tensor's bytes come from the (untouched) data section.
    const std::string data_section = full.substr(full.size() - 19 * 4);
    for (const auto& [name, t] : (*file)->tensors()) {
      int64_t numel = 1;
      for (int64_t d : t.shape) numel *= d;
      EXPECT_EQ(numel * SafetensorsDTypeSize(t.dtype), t.num_bytes) << name;
      const std::string bytes(reinterpret_cast<const char*>(t.data), t.num_bytes);
      EXPECT_NE(data_section.find(bytes), std::string::npos) << name;
    }
  }
  EXPECT_LT(accepted, 1000);  // the corruption really changes things
}

TEST(SafetensorsTest, DTypeNames) {
  EXPECT_EQ(SafetensorsDTypeSize("F32"), 4);
  EXPECT_EQ(SafetensorsDTypeSize("BF16"), 2);
  EXPECT_EQ(SafetensorsDTypeSize("I64"), 8);
  EXPECT_EQ(SafetensorsDTypeSize("f32"), 0);
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    EXPECT_EQ(DTypeFromSafetensors(SafetensorsDTypeName(t)), t);
  }
  EXPECT_FALSE(DTypeFromSafetensors("I32").has_value());
}

TEST(SafetensorsIndexTest, Parses) {
  absl::StatusOr<SafetensorsIndex> index = ParseSafetensorsIndex(
      R"({"metadata":{"total_size":96},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})",
      "index.json");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->total_size, 96);
  EXPECT_EQ(index->weight_map.at("b"), "model-00002-of-00002.safetensors");
  EXPECT_EQ(ParseSafetensorsIndex(R"({"weight_map":{}})", "i")->total_size, -1);
}

TEST(SafetensorsIndexTest, Rejects) {
  const char* bad[] = {
      "{",
      R"({"metadata":{}})",
      R"({"weight_map":[]})",
      R"({"weight_map":{"a":1}})",
      R"({"weight_map":{"a":"../etc/passwd"}})",
      R"({"weight_map":{"a":"/abs.safetensors"}})",
      R"({"weight_map":{"a":".."}})",
      R"({"weight_map":{"a":""}})",
      R"({"metadata":{"total_size":-1},"weight_map":{}})",
      R"({"metadata":[],"weight_map":{}})",
  };
  for (const char* text : bad) {
    absl::StatusOr<SafetensorsIndex> index =
        ParseSafetensorsIndex(text, "dir/model.safetensors.index.json");
    ASSERT_FALSE(index.ok()) << text;
    EXPECT_NE(index.status().message().find("dir/model.safetensors.index.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace fox
