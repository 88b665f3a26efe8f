// Round trips through the Writer and the reader, byte-identical rewrites, and the Writer's
// behaviour when writing fails.
#include <signal.h>
#include <sys/resource.h>

#include <random>

#include "gguf/gguf.h"
#include "gguf_test_util.h"

namespace hearth::gguf {
namespace {

using testing::Bytes;
using testing::TempDir;

std::vector<uint8_t> seeded_bytes(size_t count, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> bytes(count);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    return bytes;
}

Value nested(std::vector<Value> items, ValueType element_type) {
    return Array{element_type, std::move(items)};
}

// Every value type, empty strings and arrays, and arrays of arrays.
std::vector<MetadataEntry> every_value_type() {
    const std::vector<float> scores = {0.5f, -1.25f, 3.0e38f};
    const std::vector<int32_t> token_types = {1, 2, 3, -4};
    return {
        {"general.architecture", "llama"},
        {"general.alignment", uint32_t{64}},
        {"test.u8", uint8_t{200}},
        {"test.i8", int8_t{-100}},
        {"test.u16", uint16_t{60000}},
        {"test.i16", int16_t{-30000}},
        {"test.u32", uint32_t{4000000000u}},
        {"test.i32", int32_t{-2000000000}},
        {"test.f32", 3.5f},
        {"test.bool_true", true},
        {"test.bool_false", false},
        {"test.empty_string", ""},
        {"test.u64", uint64_t{18446744073709551615ull}},
        {"test.i64", int64_t{-9000000000000000000}},
        {"test.f64", -2.5e300},
        {"test.strings", Value::string_array({"a", "", "ü€", std::string(300, 'x')})},
        {"test.floats", Value::float_array(scores)},
        {"test.ints", Value::int32_array(token_types)},
        {"test.empty_array", Array{ValueType::U8, {}}},
        {"test.bools", nested({true, false, true}, ValueType::Bool)},
        {"test.nested", nested({Value::int32_array(token_types), Array{ValueType::I32, {}},
                                nested({Value::string_array({"deep", ""})}, ValueType::Array)},
                               ValueType::Array)},
    };
}

std::vector<TensorDeclaration> assorted_tensors() {
    return {
        {"token_embd.weight", {16, 3}, quant::Type::F32},
        {"blk.0.attn_norm.weight", {32}, quant::Type::F16},
        {"blk.0.ffn_up.weight", {256, 2}, quant::Type::Q4_K},
        {"blk.0.attn_q.weight", {64, 3, 2}, quant::Type::Q8_0},
        {"blk.0.ffn_down.weight", {256, 1, 1, 2}, quant::Type::Q6_K},
        {"odd_sized.bias", {5}, quant::Type::I8},
    };
}

struct WrittenFile {
    std::vector<TensorInfo> layout;
    std::vector<std::vector<uint8_t>> data;
};

WrittenFile write_assorted(const std::filesystem::path& path, size_t* progress_calls = nullptr) {
    Writer writer;
    for (MetadataEntry& entry : every_value_type()) writer.add_metadata(entry.key, entry.value);
    for (TensorDeclaration& tensor : assorted_tensors()) writer.add_tensor(tensor);
    WrittenFile written{writer.layout(), {}};
    for (size_t i = 0; i < written.layout.size(); ++i) {
        written.data.push_back(seeded_bytes(written.layout[i].size_bytes, 1000 + static_cast<uint32_t>(i)));
    }
    uint64_t last_done = 0;
    writer.write(
        path,
        [&](size_t index, const TensorInfo& tensor, std::span<uint8_t> data) {
            EXPECT_EQ(tensor.name, written.layout[index].name);
            EXPECT_TRUE(std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == 0; }));
            std::copy(written.data[index].begin(), written.data[index].end(), data.begin());
        },
        [&](uint64_t done, uint64_t total) {
            EXPECT_GT(done, last_done);
            EXPECT_LE(done, total);
            last_done = done;
            if (progress_calls) ++*progress_calls;
        });
    return written;
}

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensorType) {
    TempDir dir;
    size_t progress_calls = 0;
    const WrittenFile written = write_assorted(dir / "model.gguf", &progress_calls);
    EXPECT_EQ(progress_calls, written.layout.size());

    const File file = File::open(dir / "model.gguf");
    EXPECT_EQ(file.version(), 3u);
    EXPECT_EQ(file.alignment(), 64u);
    EXPECT_EQ(file.data_section_offset() % 64, 0u);

    const std::vector<MetadataEntry> expected = every_value_type();
    ASSERT_EQ(file.metadata().size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(file.metadata()[i].key, expected[i].key);
        EXPECT_TRUE(file.metadata()[i].value == expected[i].value) << expected[i].key;
        EXPECT_EQ(file.find(expected[i].key), &file.metadata()[i].value);
    }

    const std::vector<TensorDeclaration> declarations = assorted_tensors();
    ASSERT_EQ(file.tensors().size(), declarations.size());
    uint64_t expected_end = file.data_section_offset();
    for (size_t i = 0; i < written.layout.size(); ++i) {
        const TensorInfo& got = file.tensors()[i];
        const TensorDeclaration& declared = declarations[i];
        EXPECT_EQ(got.name, declared.name);
        EXPECT_EQ(got.shape, declared.shape);
        EXPECT_EQ(got.type, declared.type);
        EXPECT_EQ(got.offset, written.layout[i].offset);
        EXPECT_EQ(got.offset % 64, 0u);
        EXPECT_EQ(got.size_bytes, written.layout[i].size_bytes);
        EXPECT_EQ(file.find_tensor(got.name), &got);
        const std::span<const uint8_t> data = file.tensor_data(got);
        EXPECT_TRUE(std::equal(data.begin(), data.end(), written.data[i].begin(), written.data[i].end()))
            << got.name;
        expected_end = file.data_section_offset() + got.offset + (got.size_bytes + 63) / 64 * 64;
    }
    EXPECT_EQ(file.file_size(), expected_end);          // the last tensor is padded too, as llama.cpp writes
    EXPECT_EQ(file.tensors()[2].size_bytes, 2u * 144);  // Q4_K: 144 bytes per 256 elements
    EXPECT_EQ(file.tensors()[3].element_count(), 64 * 3 * 2);
    EXPECT_EQ(file.tensors()[3].row_count(), 6);

    rewrite(file, dir / "copy.gguf");
    EXPECT_EQ(testing::read_bytes(dir / "copy.gguf"), testing::read_bytes(dir / "model.gguf"));
}

TEST(GgufWriter, TypedGettersNameTheKey) {
    TempDir dir;
    write_assorted(dir / "model.gguf");
    const File file = File::open(dir / "model.gguf");
    EXPECT_EQ(file.get_string("general.architecture"), "llama");
    EXPECT_EQ(file.get_int("test.i8"), -100);
    EXPECT_EQ(file.get_int("test.u32"), 4000000000);
    EXPECT_DOUBLE_EQ(file.get_float("test.f32"), 3.5);
    EXPECT_DOUBLE_EQ(file.get_float("test.u16"), 60000.0);
    EXPECT_EQ(file.get_array("test.strings").items.size(), 4u);
    EXPECT_EQ(file.find_int("missing.key"), std::nullopt);
    EXPECT_EQ(file.find_string("missing.key"), std::nullopt);
    EXPECT_THROW(file.get_int("missing.key"), hearth::Error);
    try {
        file.get_int("test.u64");  // u64 max does not fit int64
        ADD_FAILURE();
    } catch (const hearth::Error& error) {
        EXPECT_NE(std::string(error.what()).find("'test.u64' is a u64"), std::string::npos) << error.what();
    }
    EXPECT_THROW(file.get_string("test.f32"), hearth::Error);
    EXPECT_THROW(file.find_string("test.f32"), hearth::Error);
    EXPECT_THROW(file.get_array("test.u8"), hearth::Error);
}

TEST(GgufWriter, AddsTheAlignmentKeyForANonDefaultAlignment) {
    TempDir dir;
    Writer writer(128);
    writer.add_metadata("general.name", "tiny");
    writer.add_tensor({"a", {3}, quant::Type::F32});
    writer.add_tensor({"b", {3}, quant::Type::F32});
    writer.write(dir / "tiny.gguf", {});
    const File file = File::open(dir / "tiny.gguf");
    EXPECT_EQ(file.alignment(), 128u);
    EXPECT_EQ(file.get_int("general.alignment"), 128);
    EXPECT_EQ(file.tensors()[1].offset, 128u);
    EXPECT_EQ(file.data_section_offset() % 128, 0u);
}

TEST(GgufWriter, RefusesBadAlignmentsAndMalformedMetadata) {
    EXPECT_THROW(Writer(0), hearth::Error);
    EXPECT_THROW(Writer(48), hearth::Error);
    TempDir dir;
    const auto expect_refused = [&](MetadataEntry entry, std::string_view part) {
        Writer writer;
        writer.add_metadata(entry.key, entry.value);
        try {
            writer.write(dir / "bad.gguf", {});
            ADD_FAILURE() << "wrote " << entry.key;
        } catch (const hearth::Error& error) {
            EXPECT_NE(std::string(error.what()).find(part), std::string::npos) << error.what();
        }
        EXPECT_EQ(dir.entry_count(), 0u);
    };
    expect_refused({"general.alignment", int32_t{64}}, "must be a u32");
    expect_refused({"general.alignment", uint32_t{3}}, "alignment 3 is not a power of two");
    expect_refused({"", uint32_t{3}}, "the key is empty");
    expect_refused({"mixed", Array{ValueType::U8, {uint8_t{1}, "two"}}}, "array element 1 is a string");
    Value deep = Array{ValueType::U8, {}};
    for (int i = 0; i < 20; ++i) deep = Array{ValueType::Array, {deep}};
    expect_refused({"deep", deep}, "nest deeper");

    Writer shapes;
    shapes.add_tensor({"q", {100}, quant::Type::Q4_K});
    EXPECT_THROW(shapes.layout(), hearth::Error);
}

TEST(GgufWriter, ReadsAHandBuiltV2File) {
    Bytes b;
    b.header(2, 1, 2);
    b.key("general.architecture", ValueType::String).str("llama");
    b.key("llama.block_count", ValueType::U32).u32(2);
    b.tensor("output.weight", {4, 2}, 0, 0);
    b.pad_to(32);
    for (int i = 0; i < 8; ++i) b.put(float(i));
    const File file = File::parse(b.data, "v2.gguf");
    EXPECT_EQ(file.version(), 2u);
    EXPECT_EQ(file.get_string("general.architecture"), "llama");
    EXPECT_EQ(file.get_int("llama.block_count"), 2);
    ASSERT_EQ(file.tensors().size(), 1u);
    EXPECT_EQ(file.data_section_offset() % 32, 0u);
    const std::span<const uint8_t> data = file.tensor_data(file.tensors()[0]);
    EXPECT_EQ(data.size(), 32u);
    EXPECT_EQ(data.data(), b.data.data() + file.data_section_offset());  // zero-copy
}

// A file laid out byte for byte as llama.cpp's gguf_write_to_file does (table padded to the
// alignment, every tensor padded, the last one too) rewrites to the same bytes.
TEST(GgufWriter, RewritesALlamaCppLayoutIdentically) {
    Bytes b;
    b.header(3, 2, 3);
    b.key("general.architecture", ValueType::String).str("llama");
    b.key("tokenizer.ggml.tokens", ValueType::Array).u32(static_cast<uint32_t>(ValueType::String)).u64(2);
    b.str("<s>").str("");
    b.key("general.alignment", ValueType::U32).u32(16);
    b.tensor("a", {3}, 0, 0);    // 12 bytes, padded to 16
    b.tensor("b", {32}, 8, 16);  // q8_0: 34 bytes, padded to 48
    b.pad_to(16);
    for (int i = 0; i < 12; ++i) b.put(uint8_t(i + 1));
    b.zeros(4);
    for (int i = 0; i < 34; ++i) b.put(uint8_t(0xA0 + i));
    b.pad_to(16);

    const File file = File::parse(b.data, "llama.gguf");
    TempDir dir;
    rewrite(file, dir / "out.gguf");
    EXPECT_EQ(testing::read_bytes(dir / "out.gguf"), b.data);
}

TEST(GgufWriter, OpenRefusesMissingFilesAndDirectories) {
    TempDir dir;
    EXPECT_THROW(File::open(dir / "missing.gguf"), hearth::Error);
    EXPECT_THROW(File::open(dir.path()), hearth::Error);
    testing::write_bytes(dir / "empty.gguf", {});
    try {
        File::open(dir / "empty.gguf");
        ADD_FAILURE();
    } catch (const hearth::Error& error) {
        EXPECT_NE(std::string(error.what()).find("empty.gguf: header: magic at byte 0"), std::string::npos)
            << error.what();
    }
}

TEST(GgufWriter, WritingIntoAMissingDirectoryThrowsAndLeavesNothing) {
    TempDir dir;
    Writer writer;
    writer.add_tensor({"a", {4}, quant::Type::F32});
    const std::filesystem::path target = dir / "no-such-dir" / "model.gguf";
    try {
        writer.write(target, {});
        ADD_FAILURE();
    } catch (const hearth::Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(target.string()), std::string::npos) << message;
        EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
    }
    EXPECT_EQ(dir.entry_count(), 0u);
}

TEST(GgufWriter, AFailingFillLeavesNoFileAndNoTemporary) {
    TempDir dir;
    Writer writer;
    writer.add_tensor({"a", {4}, quant::Type::F32});
    writer.add_tensor({"b", {4}, quant::Type::F32});
    const auto throwing_fill = [](size_t index, const TensorInfo&, std::span<uint8_t>) {
        if (index == 1) throw hearth::Error("source tensor unreadable");
    };
    EXPECT_THROW(writer.write(dir / "new.gguf", throwing_fill), hearth::Error);
    EXPECT_EQ(dir.entry_count(), 0u);

    const std::vector<uint8_t> old_contents = {'o', 'l', 'd'};
    testing::write_bytes(dir / "existing.gguf", old_contents);
    EXPECT_THROW(writer.write(dir / "existing.gguf", throwing_fill), hearth::Error);
    EXPECT_EQ(testing::read_bytes(dir / "existing.gguf"), old_contents);
    EXPECT_EQ(dir.entry_count(), 1u);
}

// A full disk cannot be made on demand; a file-size limit makes write() fail the same way
// (EFBIG instead of ENOSPC) partway through the data.
TEST(GgufWriter, AnIoErrorMidWayNamesThePathAndErrnoAndCleansUp) {
    TempDir dir;
    const std::vector<uint8_t> old_contents = {'o', 'l', 'd'};
    testing::write_bytes(dir / "model.gguf", old_contents);
    Writer writer;
    writer.add_tensor({"big", {256 * 1024}, quant::Type::F32});  // 1 MiB

    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
    const auto saved_handler = signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = 64 * 1024;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    std::string message;
    try {
        writer.write(dir / "model.gguf", {});
    } catch (const hearth::Error& error) {
        message = error.what();
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, saved_handler);

    EXPECT_NE(message.find((dir / "model.gguf").string() + ": cannot write: File too large"),
              std::string::npos)
        << message;
    EXPECT_EQ(testing::read_bytes(dir / "model.gguf"), old_contents);
    EXPECT_EQ(dir.entry_count(), 1u);
}

TEST(GgufWriter, EncodeHeaderIsTheFilePrefixBeforeTheData) {
    TempDir dir;
    Writer writer(64);
    writer.add_metadata("general.name", "x");
    writer.add_tensor({"a", {7}, quant::Type::F16});
    writer.write(dir / "x.gguf", {});
    const std::vector<uint8_t> header = writer.encode_header();
    const std::vector<uint8_t> bytes = testing::read_bytes(dir / "x.gguf");
    EXPECT_EQ(header.size(), File::open(dir / "x.gguf").data_section_offset());
    EXPECT_TRUE(std::equal(header.begin(), header.end(), bytes.begin()));
    EXPECT_EQ(bytes.size(), header.size() + 64);
}

TEST(GgufValue, NumbersConvert) {
    EXPECT_EQ(Value(uint8_t{7}).as_int(), 7);
    EXPECT_EQ(Value(uint64_t{1} << 63).as_int(), std::nullopt);
    EXPECT_EQ(Value(1.5f).as_int(), std::nullopt);
    EXPECT_EQ(Value(true).as_int(), std::nullopt);
    EXPECT_EQ(Value(int16_t{-3}).as_double(), -3.0);
    EXPECT_EQ(Value("x").as_double(), std::nullopt);
    EXPECT_EQ(Value(int64_t{1}).type(), ValueType::I64);
    EXPECT_EQ(value_type_name(ValueType::F64), "f64");
}

}  // namespace
}  // namespace hearth::gguf
