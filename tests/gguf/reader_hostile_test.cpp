// Hostile input: every truncation of a valid file, targeted mutations of each field, and a
// seeded random corpus. Each must end in hearth::Error naming the file and the field, never a
// crash, hang or huge allocation.
#include <random>

#include "gguf/gguf.h"
#include "gguf_test_util.h"

namespace hearth::gguf {
namespace {

using testing::Bytes;
using testing::expect_parse_error;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ4K = 12;
constexpr uint32_t kF64 = 28;
constexpr uint64_t kHuge = ~uint64_t{0};

// A small valid file from the Writer: strings, arrays, nested arrays and three tensors.
std::vector<uint8_t> small_valid_file() {
    Writer writer;
    writer.add_metadata("general.architecture", "llama");
    writer.add_metadata("llama.block_count", uint32_t{1});
    writer.add_metadata("tokenizer.ggml.tokens", Value::string_array({"<s>", "</s>", "", "hello"}));
    const std::vector<float> scores = {0.f, -1.f, 2.5f};
    writer.add_metadata("tokenizer.ggml.scores", Value::float_array(scores));
    writer.add_metadata("test.nested", Array{ValueType::Array, {Value::string_array({"x"}), Array{}}});
    writer.add_metadata("test.flag", true);
    writer.add_tensor({"token_embd.weight", {8, 2}, quant::Type::F32});
    writer.add_tensor({"blk.0.ffn_up.weight", {256}, quant::Type::Q4_K});
    writer.add_tensor({"output_norm.weight", {8}, quant::Type::F32});
    std::vector<uint8_t> bytes = writer.encode_header();
    for (const TensorInfo& tensor : writer.layout()) {
        bytes.resize(bytes.size() + (tensor.size_bytes + 31) / 32 * 32,
                     static_cast<uint8_t>(tensor.offset + 1));
    }
    return bytes;
}

// The walk a caller does after parsing: every value, every tensor's first and last byte.
size_t walk(const File& file) {
    size_t touched = 0;
    const auto visit = [&](const Value& value, const auto& self) -> void {
        ++touched;
        if (const Array* array = value.as_array()) {
            for (const Value& item : array->items) self(item, self);
        }
    };
    for (const MetadataEntry& entry : file.metadata()) visit(entry.value, visit);
    for (const TensorInfo& tensor : file.tensors()) {
        const std::span<const uint8_t> data = file.tensor_data(tensor);
        touched += data.front() + data.back();
    }
    return touched;
}

TEST(GgufHostile, TheSmallFileIsValid) {
    const std::vector<uint8_t> bytes = small_valid_file();
    const File file = File::parse(bytes, "small.gguf");
    EXPECT_EQ(file.tensors().size(), 3u);
    EXPECT_GT(walk(file), 0u);
}

TEST(GgufHostile, EveryTruncationThrows) {
    const std::vector<uint8_t> bytes = small_valid_file();
    const File whole = File::parse(bytes, "whole.gguf");
    const TensorInfo& last = whole.tensors().back();
    const uint64_t data_end = whole.data_section_offset() + last.offset + last.size_bytes;
    for (uint64_t length = 0; length < data_end; ++length) {
        const std::span<const uint8_t> prefix(bytes.data(), length);
        try {
            File::parse(prefix, "truncated.gguf");
            ADD_FAILURE() << "a file truncated to " << length << " bytes parsed";
        } catch (const hearth::Error& error) {
            const std::string message = error.what();
            EXPECT_EQ(message.rfind("truncated.gguf: ", 0), 0u) << message;
            EXPECT_NE(message.find("byte"), std::string::npos) << message;
        }
    }
    // Only the last tensor's padding may be missing.
    EXPECT_NO_THROW(File::parse(std::span(bytes.data(), data_end), "unpadded.gguf"));
}

TEST(GgufHostile, HeaderDefects) {
    expect_parse_error(Bytes().u32(0x46554748).u32(3).u64(0).u64(0).data, {"magic 'HGUF'", "not 'GGUF'"});
    expect_parse_error(Bytes().header(1, 0, 0).data, {"GGUF version 1 at byte 4", "no longer supported"});
    expect_parse_error(Bytes().header(4, 0, 0).data, {"GGUF version 4 at byte 4", "not supported"});
    expect_parse_error(Bytes().header(0x03000000, 0, 0).data, {"byte-swapped"});
    expect_parse_error(Bytes().header(3, kHuge, 0).data,
                       {"header: tensor count 18446744073709551615 at byte 8"});
    expect_parse_error(Bytes().header(3, 0, 1000).data, {"header: metadata count 1000 at byte 16"});
}

TEST(GgufHostile, MetadataDefects) {
    Bytes huge_key;
    huge_key.header(3, 0, 1).u64(uint64_t{1} << 63).zeros(16);
    expect_parse_error(huge_key.data, {"metadata key #0: key length 9223372036854775808 at byte 24 runs past "
                                       "the end of the file (48 bytes)"});

    Bytes huge_string;
    huge_string.header(3, 0, 1).key("general.name", ValueType::String).u64(kHuge);
    expect_parse_error(huge_string.data,
                       {"metadata key #0 ('general.name'): string length 18446744073709551615"});

    Bytes huge_array;
    huge_array.header(3, 0, 1).key("tokenizer.ggml.tokens", ValueType::Array);
    huge_array.u32(static_cast<uint32_t>(ValueType::String)).u64(kHuge);
    expect_parse_error(huge_array.data,
                       {"metadata key #0 ('tokenizer.ggml.tokens'): array count 18446744073709551615",
                        "runs past the end of the file"});

    // 100 u64 elements need 800 bytes; only 100 are there.
    Bytes short_array;
    short_array.header(3, 0, 1)
        .key("scores", ValueType::Array)
        .u32(static_cast<uint32_t>(ValueType::U64))
        .u64(100);
    short_array.zeros(100);
    expect_parse_error(short_array.data, {"('scores'): array count 100 at byte 46"});

    Bytes unknown_type;
    unknown_type.header(3, 0, 1).str("x").u32(13).u32(0);
    expect_parse_error(unknown_type.data,
                       {"metadata key #0 ('x'): value type 13 at byte 33", "not a GGUF value type"});

    Bytes unknown_element;
    unknown_element.header(3, 0, 1).key("x", ValueType::Array).u32(77).u64(0);
    expect_parse_error(unknown_element.data, {"array element type 77 at byte 37"});

    Bytes bad_bool;
    bad_bool.header(3, 0, 1).key("flag", ValueType::Bool).put(uint8_t{2});
    expect_parse_error(bad_bool.data, {"('flag'): bool value 2 at byte 40 is neither 0 nor 1"});

    Bytes empty_key;
    empty_key.header(3, 0, 1).key("", ValueType::U8).put(uint8_t{0}).zeros(4);
    expect_parse_error(empty_key.data, {"metadata key #0: key at byte 24 is empty"});

    Bytes duplicate;
    duplicate.header(3, 0, 2)
        .key("a.b", ValueType::U8)
        .put(uint8_t{1})
        .key("a.b", ValueType::U8)
        .put(uint8_t{2});
    expect_parse_error(duplicate.data, {"metadata key #1 ('a.b') at byte 40 repeats metadata key #0"});
}

TEST(GgufHostile, DeeplyNestedArraysAreRefused) {
    Bytes deep;
    deep.header(3, 0, 1).key("deep", ValueType::Array);
    for (int i = 0; i < 1000; ++i) deep.u32(static_cast<uint32_t>(ValueType::Array)).u64(1);
    deep.u32(static_cast<uint32_t>(ValueType::U8)).u64(0);
    expect_parse_error(deep.data, {"('deep'): array at byte", "nests deeper than 8 levels"});

    Bytes allowed;  // 8 levels are fine
    allowed.header(3, 0, 1).key("deep", ValueType::Array);
    for (int i = 0; i < 7; ++i) allowed.u32(static_cast<uint32_t>(ValueType::Array)).u64(1);
    allowed.u32(static_cast<uint32_t>(ValueType::U8)).u64(0);
    EXPECT_NO_THROW(File::parse(allowed.data, "ok.gguf"));
}

TEST(GgufHostile, AlignmentDefects) {
    for (uint32_t alignment : {0u, 3u, 48u}) {
        Bytes b;
        b.header(3, 0, 1).key("general.alignment", ValueType::U32).u32(alignment);
        expect_parse_error(b.data, {"metadata key #0 ('general.alignment') at byte 24",
                                    fmt::format("alignment {} is not a power of two", alignment)});
    }
    Bytes wrong_type;
    wrong_type.header(3, 0, 1).key("general.alignment", ValueType::U64).u64(32);
    expect_parse_error(wrong_type.data, {"must be a u32 but is a u64"});
}

// One tensor of the given fields after an empty metadata section, with `data_bytes` of data.
std::vector<uint8_t> one_tensor(std::initializer_list<int64_t> shape, uint32_t type, uint64_t offset,
                                size_t data_bytes) {
    Bytes b;
    b.header(3, 1, 0).tensor("w", shape, type, offset).pad_to(32).zeros(data_bytes);
    return b.data;
}

TEST(GgufHostile, TensorInfoDefects) {
    expect_parse_error(one_tensor({1, 1, 1, 1, 1}, kF32, 0, 32),
                       {"tensor #0 ('w'): n_dims 5 at byte 33 is more than 4"});
    expect_parse_error(one_tensor({int64_t{1} << 32, int64_t{1} << 32}, kF32, 0, 32),
                       {"tensor #0 ('w'): shape at byte 37", "more elements than int64"});
    expect_parse_error(one_tensor({int64_t{1} << 61, 2}, kF64, 0, 32), {"more bytes than int64"});
    expect_parse_error(one_tensor({4, -3}, kF32, 0, 32), {"dimension 1 is -3"});
    expect_parse_error(one_tensor({0}, kF32, 0, 32), {"dimension 0 is 0"});
    expect_parse_error(one_tensor({4}, 4, 0, 32),
                       {"tensor #0 ('w'): type 4 at byte 45 is not a known ggml type"});
    expect_parse_error(one_tensor({4}, 1000, 0, 32), {"type 1000 at byte 45 is not a known ggml type"});
    expect_parse_error(one_tensor({100}, kQ4K, 0, 512),
                       {"row length 100 is not a multiple of the q4_K block size (256)"});
    expect_parse_error(one_tensor({4}, kF32, 16, 64), {"tensor #0 ('w'): data offset 16 at byte 49",
                                                       "not a multiple of the alignment (32)"});
    expect_parse_error(one_tensor({64}, kF32, 0, 100),
                       {"tensor #0 ('w') at byte 24: data offset 0 + 256 bytes runs past "
                        "the end of the file"});
    expect_parse_error(one_tensor({4}, kF32, uint64_t{1} << 63, 32), {"runs past the end of the file"});

    Bytes empty_name;
    empty_name.header(3, 1, 0).tensor("", {4}, kF32, 0).pad_to(32).zeros(16);
    expect_parse_error(empty_name.data, {"tensor #0: name at byte 24 is empty"});

    Bytes data_after_eof;  // the table ends exactly at the end of the file
    data_after_eof.header(3, 1, 0).tensor("w", {4}, kF32, 0);
    expect_parse_error(data_after_eof.data,
                       {"tensor data section starts at byte 64", "the file has 57 bytes"});
}

TEST(GgufHostile, TensorsMayNotShareBytesOrNames) {
    Bytes overlap;
    overlap.header(3, 2, 0).tensor("a", {16}, kF32, 0).tensor("b", {8}, kF32, 32).pad_to(32).zeros(128);
    expect_parse_error(overlap.data, {"tensor #1 ('b')",
                                      "data offset 32 overlaps tensor #0 ('a'), which spans data "
                                      "offsets 0 to 64"});

    Bytes duplicate;
    duplicate.header(3, 2, 0).tensor("a", {8}, kF32, 0).tensor("a", {8}, kF32, 32).pad_to(32).zeros(64);
    expect_parse_error(duplicate.data, {"tensor #1 ('a') at byte", "has the same name as tensor #0"});

    Bytes disjoint;  // the same layout without the overlap parses
    disjoint.header(3, 2, 0).tensor("a", {16}, kF32, 0).tensor("b", {8}, kF32, 64).pad_to(32).zeros(96);
    EXPECT_NO_THROW(File::parse(disjoint.data, "ok.gguf"));
}

TEST(GgufHostile, RandomByteFlipsParseOrThrow) {
    const std::vector<uint8_t> original = small_valid_file();
    std::mt19937 rng(20240611);
    size_t parsed = 0;
    size_t refused = 0;
    for (int mutant = 0; mutant < 2000; ++mutant) {
        std::vector<uint8_t> bytes = original;
        const int flips = 1 + static_cast<int>(rng() % 8);
        for (int i = 0; i < flips; ++i) {
            const size_t at = rng() % bytes.size();
            // Mostly single-bit flips; sometimes a byte of 0x00 / 0xFF to hit lengths and counts.
            switch (rng() % 4) {
                case 0:
                    bytes[at] = 0xFF;
                    break;
                case 1:
                    bytes[at] = 0x00;
                    break;
                default:
                    bytes[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
                    break;
            }
        }
        if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
        try {
            const File file = File::parse(bytes, "mutant.gguf");
            walk(file);
            ++parsed;
        } catch (const hearth::Error& error) {
            EXPECT_EQ(std::string(error.what()).rfind("mutant.gguf: ", 0), 0u) << error.what();
            ++refused;
        }
    }
    EXPECT_EQ(parsed + refused, 2000u);
    EXPECT_GT(parsed, 0u);
    EXPECT_GT(refused, 0u);
}

}  // namespace
}  // namespace hearth::gguf
