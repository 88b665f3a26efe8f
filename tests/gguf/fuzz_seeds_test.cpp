// Writes the seed corpus of fuzz/gguf_fuzz.cpp (named .seed: the repository ignores *.gguf).
// Disabled: run it by hand after a format change,
//   gguf_tests --gtest_also_run_disabled_tests --gtest_filter='*WriteFuzzSeeds*'
#include <filesystem>

#include "gguf/gguf.h"
#include "gguf_test_util.h"

namespace hearth::gguf {
namespace {

TEST(GgufFuzzSeeds, DISABLED_WriteFuzzSeeds) {
    const std::filesystem::path folder =
        std::filesystem::path(HEARTH_SOURCE_DIR) / "fuzz" / "corpus" / "gguf";
    std::filesystem::create_directories(folder);
    const auto fill = [](size_t index, const TensorInfo&, std::span<uint8_t> data) {
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(index * 31 + i);
    };

    Writer minimal;
    minimal.add_metadata("general.architecture", "llama");
    minimal.add_tensor({"output.weight", {4, 2}, quant::Type::F32});
    minimal.write(folder / "minimal.seed", fill);

    Writer every_type(64);
    every_type.add_metadata("u8", uint8_t{1});
    every_type.add_metadata("i8", int8_t{-1});
    every_type.add_metadata("u16", uint16_t{2});
    every_type.add_metadata("i16", int16_t{-2});
    every_type.add_metadata("u32", uint32_t{3});
    every_type.add_metadata("i32", int32_t{-3});
    every_type.add_metadata("f32", 1.5f);
    every_type.add_metadata("bool", true);
    every_type.add_metadata("string", "text");
    every_type.add_metadata("u64", uint64_t{4});
    every_type.add_metadata("i64", int64_t{-4});
    every_type.add_metadata("f64", 2.5);
    every_type.add_metadata("tokens", Value::string_array({"<s>", "", "a"}));
    every_type.add_metadata("nested", Array{ValueType::Array, {Value::string_array({"x"}), Array{}}});
    every_type.add_tensor({"a", {256}, quant::Type::Q4_K});
    every_type.add_tensor({"b", {32, 2}, quant::Type::Q8_0});
    every_type.add_tensor({"c", {3}, quant::Type::F16});
    every_type.write(folder / "every_type.seed", fill);

    testing::Bytes v2;  // GGUF v2, which only our reader (not our Writer) produces
    v2.header(2, 1, 1).key("general.alignment", ValueType::U32).u32(16);
    v2.tensor("t", {2, 2}, 0, 0).pad_to(16);
    for (int i = 0; i < 16; ++i) v2.put(uint8_t(i));
    testing::write_bytes(folder / "v2.seed", v2.data);
}

}  // namespace
}  // namespace hearth::gguf
