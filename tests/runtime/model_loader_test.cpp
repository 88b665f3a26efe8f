// LoadedModel::load on good and damaged files, the memory check, and Session's context
// bookkeeping. One tiny test model (2 layers, dim 256, the real Llama 3.1 vocabulary) is written
// per binary; damaged files are copies of it with one thing changed.
#include "runtime/model_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "gguf/gguf.h"
#include "model/test_model.h"
#include "quant/types.h"
#include "runtime/memory.h"
#include "runtime/session.h"

namespace hearth::runtime {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kTinyContext = 131072;  // the tiny preset keeps Llama 3.1's context length
constexpr int64_t kVocabSize = 128256;
constexpr uint16_t kF16Nan = 0x7E00;
constexpr uint16_t kF16Infinity = 0x7C00;

// A GGUF file's metadata and tensor table, to be edited and written back by write_copy.
struct Contents {
    std::vector<gguf::MetadataEntry> metadata;
    std::vector<gguf::TensorDeclaration> tensors;

    void set(const std::string& key, gguf::Value value) {
        for (auto& entry : metadata) {
            if (entry.key == key) {
                entry.value = std::move(value);
                return;
            }
        }
        metadata.push_back({key, std::move(value)});
    }
    gguf::TensorDeclaration& tensor(const std::string& name) {
        auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& t) { return t.name == name; });
        if (it == tensors.end()) throw std::logic_error("test: no tensor " + name);
        return *it;
    }
    void drop(const std::string& name) {
        std::erase_if(tensors, [&](const auto& t) { return t.name == name; });
    }
};

Contents contents_of(const gguf::File& file) {
    Contents contents{file.metadata(), {}};
    for (const gguf::TensorInfo& t : file.tensors()) contents.tensors.push_back({t.name, t.shape, t.type});
    return contents;
}

gguf::Writer writer_for(const Contents& contents) {
    gguf::Writer writer;
    for (const auto& entry : contents.metadata) writer.add_metadata(entry.key, entry.value);
    for (const auto& tensor : contents.tensors) writer.add_tensor(tensor);
    return writer;
}

// Writes `contents` to `path`. A tensor keeps the source's bytes when the source has a tensor of
// that name and size; any other tensor is zeros.
void write_copy(const gguf::File& source, const Contents& contents, const fs::path& path) {
    writer_for(contents).write(path, [&](size_t, const gguf::TensorInfo& tensor, std::span<uint8_t> data) {
        const gguf::TensorInfo* original = source.find_tensor(tensor.name);
        if (original && original->size_bytes == data.size()) {
            const auto bytes = source.tensor_data(*original);
            std::memcpy(data.data(), bytes.data(), bytes.size());
        }
    });
}

// A copy of `source` with `value` written over element `index` of tensor `name`.
template <typename T>
void write_poisoned_copy(const fs::path& source, const std::string& name, int64_t index, T value,
                         const fs::path& path) {
    fs::copy_file(source, path, fs::copy_options::overwrite_existing);
    const gguf::File file = gguf::File::open(source);
    const gguf::TensorInfo* tensor = file.find_tensor(name);
    ASSERT_NE(tensor, nullptr) << name;
    ASSERT_EQ(quant::type_info(tensor->type).block_bytes, sizeof(T)) << name;
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(static_cast<std::streamoff>(file.data_section_offset() + tensor->offset + index * sizeof(T)));
    out.write(reinterpret_cast<const char*>(&value), sizeof(T));
    ASSERT_TRUE(out.good());
}

// The tensor table of a Llama of `preset`'s shape: F16 matrices, F32 norms and rope factors.
std::vector<gguf::TensorDeclaration> llama_tensors(const model::TestModelPreset& p) {
    const int64_t dim = p.embedding_length, ffn = p.feed_forward_length;
    const int64_t head_dim = dim / p.head_count, kv_dim = p.head_count_kv * head_dim;
    const auto f16 = quant::Type::F16, f32 = quant::Type::F32;
    std::vector<gguf::TensorDeclaration> tensors{{"token_embd.weight", {dim, kVocabSize}, f16},
                                                 {"rope_freqs.weight", {head_dim / 2}, f32}};
    for (int64_t i = 0; i < p.layer_count; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        tensors.push_back({b + "attn_norm.weight", {dim}, f32});
        tensors.push_back({b + "attn_q.weight", {dim, dim}, f16});
        tensors.push_back({b + "attn_k.weight", {dim, kv_dim}, f16});
        tensors.push_back({b + "attn_v.weight", {dim, kv_dim}, f16});
        tensors.push_back({b + "attn_output.weight", {dim, dim}, f16});
        tensors.push_back({b + "ffn_norm.weight", {dim}, f32});
        tensors.push_back({b + "ffn_gate.weight", {dim, ffn}, f16});
        tensors.push_back({b + "ffn_up.weight", {dim, ffn}, f16});
        tensors.push_back({b + "ffn_down.weight", {ffn, dim}, f16});
    }
    tensors.push_back({"output_norm.weight", {dim}, f32});
    if (!p.tied_output) tensors.push_back({"output.weight", {dim, kVocabSize}, f16});
    return tensors;
}

// A file with `contents`' metadata and tensor table whose tensor data is a hole: the file has
// its full size but takes no disk, and reads as zeros. Enough for everything that reads only
// metadata (the memory estimate) on models far bigger than the test machine.
void write_sparse_model(const Contents& contents, const fs::path& path) {
    const gguf::Writer writer = writer_for(contents);
    const std::vector<uint8_t> header = writer.encode_header();
    uint64_t data_bytes = 0;
    for (const gguf::TensorInfo& t : writer.layout())
        data_bytes = std::max(data_bytes, t.offset + t.size_bytes);
    {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(header.data()), static_cast<std::streamsize>(header.size()));
    }
    fs::resize_file(path, header.size() + data_bytes);
}

std::vector<int32_t> prompt_tokens(int64_t count, int32_t seed) {
    std::vector<int32_t> tokens(count);
    for (int64_t i = 0; i < count; ++i) tokens[i] = static_cast<int32_t>((seed + i * 7919) % 128000);
    return tokens;
}

std::vector<float> copy(std::span<const float> logits) {
    return {logits.begin(), logits.end()};
}

// max |a - b| over max |a|: the error relative to the logits' scale.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double largest = 0, difference = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        largest = std::max(largest, std::abs(static_cast<double>(a[i])));
        difference = std::max(difference, std::abs(static_cast<double>(a[i]) - b[i]));
    }
    return difference / largest;
}

LoadOptions small_options(int64_t context_length = 64, int64_t batch_size = 512) {
    LoadOptions options;
    options.threads = 2;
    options.context_length = context_length;
    options.batch_size = batch_size;
    return options;
}

// The tiny model, written once per test binary into a temporary folder removed at exit.
class TinyModel {
  public:
    TinyModel() {
        std::string pattern = (fs::temp_directory_path() / "hearth-loader-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir_ = pattern;
        model::TestModelOptions options;
        options.preset = model::find_test_model_preset("tiny");
        options.seed = 9;
        options.threads = 2;
        model::write_test_model(options, path());
    }
    ~TinyModel() {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }
    const fs::path& dir() const { return dir_; }
    fs::path path() const { return dir_ / "tiny.gguf"; }

  private:
    fs::path dir_;
};

const TinyModel& tiny_model() {
    static const TinyModel model;
    return model;
}

class ModelLoaderTest : public ::testing::Test {
  protected:
    fs::path tiny_ = tiny_model().path();
    fs::path dir_ = tiny_model().dir();

    // Loading `path` must throw hearth::Error whose message holds every part.
    void expect_load_error(const fs::path& path, std::initializer_list<std::string_view> parts,
                           const LoadOptions& options = small_options()) {
        try {
            LoadedModel::load(path, options);
            ADD_FAILURE() << path << " loaded; expected an error with: " << *parts.begin();
        } catch (const Error& error) {
            const std::string message = error.what();
            for (std::string_view part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
        }
    }

    // Writes the tiny model with `edit` applied to its metadata and tensor table.
    template <typename Edit>
    fs::path edited_tiny(const std::string& name, Edit edit) {
        const gguf::File source = gguf::File::open(tiny_);
        Contents contents = contents_of(source);
        edit(contents);
        const fs::path path = dir_ / name;
        write_copy(source, contents, path);
        return path;
    }
};

TEST_F(ModelLoaderTest, LoadsTheTinyModel) {
    const auto model = LoadedModel::load(tiny_, small_options());
    EXPECT_EQ(model->hparams().layer_count, 2);
    EXPECT_EQ(model->hparams().vocab_size, kVocabSize);
    EXPECT_EQ(model->options().context_length, 64);
    EXPECT_EQ(model->options().batch_size, 64);  // never more than the context
    EXPECT_NE(model->chat_template(), nullptr);
    EXPECT_TRUE(model->ends_generation(128009));   // <|eot_id|>
    EXPECT_TRUE(model->ends_generation(128001));   // <|end_of_text|>
    EXPECT_FALSE(model->ends_generation(128000));  // <|begin_of_text|>
}

TEST_F(ModelLoaderTest, MissingFileIsNamed) {
    expect_load_error(dir_ / "absent.gguf", {"absent.gguf", "does not exist"});
}

TEST_F(ModelLoaderTest, MissingTensorIsNamed) {
    const fs::path path = edited_tiny("missing.gguf", [](Contents& c) { c.drop("blk.1.ffn_up.weight"); });
    expect_load_error(path, {"missing.gguf", "'blk.1.ffn_up.weight'", "missing"});
}

TEST_F(ModelLoaderTest, UnknownArchitectureIsNamed) {
    const fs::path path =
        edited_tiny("mamba.gguf", [](Contents& c) { c.set("general.architecture", "mamba"); });
    expect_load_error(path, {"mamba.gguf", "'mamba'", "not supported"});
}

TEST_F(ModelLoaderTest, NormStoredAsF16IsRefused) {
    const fs::path path = edited_tiny(
        "f16-norm.gguf", [](Contents& c) { c.tensor("blk.0.attn_norm.weight").type = quant::Type::F16; });
    expect_load_error(path, {"f16-norm.gguf", "'blk.0.attn_norm.weight'", "f16", "must be F32"});
}

TEST_F(ModelLoaderTest, MatrixOfTheWrongShapeIsRefused) {
    // attn_k is [dim, kv_dim] = [256, 128]; a file that says [256, 256] disagrees with 2 KV heads.
    const fs::path path = edited_tiny("k-shape.gguf", [](Contents& c) {
        c.tensor("blk.1.attn_k.weight").shape = {256, 256};
    });
    expect_load_error(path, {"k-shape.gguf", "'blk.1.attn_k.weight'", "[256, 256]", "[256, 128]"});
}

TEST_F(ModelLoaderTest, MissingHyperparameterIsNamed) {
    const fs::path path = edited_tiny("no-heads.gguf", [](Contents& c) {
        std::erase_if(c.metadata, [](const auto& e) { return e.key == "llama.attention.head_count"; });
    });
    expect_load_error(path, {"llama.attention.head_count"});
}

TEST_F(ModelLoaderTest, NanInANormFailsAtLoad) {
    const fs::path path = dir_ / "nan-norm.gguf";
    write_poisoned_copy(tiny_, "blk.1.ffn_norm.weight", 17, std::numeric_limits<float>::quiet_NaN(), path);
    expect_load_error(path, {"nan-norm.gguf", "'blk.1.ffn_norm.weight'", "nan", "index 17"});
}

// Big matrices are not read at load (they are paged in by the first token), so a NaN or an
// infinity in one shows up as non-finite logits, which the model traces back to the tensor.
TEST_F(ModelLoaderTest, NonFiniteValueInAMatrixIsNamedByEvaluate) {
    constexpr int64_t kRow = 100, kColumn = 5, kFeedForward = 768;  // ffn_down is [768, 256]
    for (const uint16_t poison : {kF16Nan, kF16Infinity}) {
        SCOPED_TRACE(poison);
        const fs::path path = dir_ / "poisoned-ffn-down.gguf";
        write_poisoned_copy(tiny_, "blk.0.ffn_down.weight", kRow * kFeedForward + kColumn, poison, path);
        const auto model = LoadedModel::load(path, small_options());
        Session session(*model);
        const std::vector<int32_t> first = prompt_tokens(4, 1);
        try {
            session.evaluate(first);
            ADD_FAILURE() << "evaluate returned logits from a model with a non-finite weight";
        } catch (const Error& error) {
            const std::string message = error.what();
            EXPECT_NE(message.find("'blk.0.ffn_down.weight'"), std::string::npos) << message;
            EXPECT_NE(message.find("row 100, column 5"), std::string::npos) << message;
        }
        EXPECT_TRUE(session.tokens().empty());
    }
}

TEST_F(ModelLoaderTest, OptionsOutsideTheModelAreRefused) {
    expect_load_error(tiny_, {"context length 131073", "1 to 131072"}, small_options(kTinyContext + 1));
    expect_load_error(tiny_, {"context length -1"}, small_options(-1));
    expect_load_error(tiny_, {"batch size", "0"}, small_options(64, 0));
    LoadOptions q4 = small_options();
    q4.kv_type = quant::Type::Q4_0;
    expect_load_error(tiny_, {"KV cache type q4_0", "f16 or q8_0"}, q4);
}

TEST_F(ModelLoaderTest, MemoryEstimateAtTheModelsOwnContext) {
    const gguf::File file = gguf::File::open(tiny_);
    uint64_t tensor_bytes = 0;
    for (const auto& t : file.tensors()) tensor_bytes += t.size_bytes;

    // tiny: 2 layers, 2 KV heads of 64 values; a row is 128 bytes in F16, 2 Q8_0 blocks of 34 in Q8_0.
    for (const auto& [kv_type, row_bytes] :
         {std::pair{quant::Type::F16, 128}, std::pair{quant::Type::Q8_0, 68}}) {
        SCOPED_TRACE(quant::type_name(kv_type));
        LoadOptions options = small_options(0);
        options.kv_type = kv_type;
        const auto model = LoadedModel::load(tiny_, options);
        EXPECT_EQ(model->options().context_length, kTinyContext);
        const MemoryEstimate& memory = model->memory();
        EXPECT_EQ(memory.kv_cache, uint64_t{2} * 2 * 2 * kTinyContext * row_bytes);
        // tiny's output matrix is its own, so the embedding table is only gathered from (mapped,
        // outside the total); F16 has no repacked layout, so the rest counts at the file's size.
        const uint64_t embedding = file.find_tensor("token_embd.weight")->size_bytes;
        EXPECT_EQ(memory.embedding_mapped, embedding);
        EXPECT_EQ(memory.weights, tensor_bytes - embedding);
        EXPECT_GT(memory.compute, kVocabSize * sizeof(float));  // at least one row of logits
        EXPECT_GT(memory.runtime, file.data_section_offset());  // the metadata pages and more
        EXPECT_EQ(memory.total(), memory.weights + memory.kv_cache + memory.compute + memory.runtime);
        EXPECT_EQ(estimate_memory(file, model->hparams(), kTinyContext, kv_type, 512, 3).kv_cache, 3 * memory.kv_cache);
    }
    EXPECT_GT(available_memory_bytes(), 0u);
}

// Llama 3.1 8B at its full 128K context needs 16 GB of F16 weights and 17 GB of KV cache. The
// file here has the 8B's exact tensor table but no data (a sparse file), which is all the
// estimate reads.
TEST_F(ModelLoaderTest, MemoryEstimateOfLlama8B) {
    const model::TestModelPreset& p = *model::find_test_model_preset("8b");
    Contents contents = contents_of(gguf::File::open(tiny_));
    contents.set("general.size_label", "8B");
    contents.set("llama.block_count", static_cast<uint32_t>(p.layer_count));
    contents.set("llama.embedding_length", static_cast<uint32_t>(p.embedding_length));
    contents.set("llama.feed_forward_length", static_cast<uint32_t>(p.feed_forward_length));
    contents.set("llama.attention.head_count", static_cast<uint32_t>(p.head_count));
    contents.set("llama.attention.head_count_kv", static_cast<uint32_t>(p.head_count_kv));
    contents.set("llama.rope.dimension_count", static_cast<uint32_t>(p.embedding_length / p.head_count));
    contents.tensors = llama_tensors(p);
    const fs::path path = dir_ / "8b-sparse.gguf";
    write_sparse_model(contents, path);

    const gguf::File file = gguf::File::open(path);
    const model::Hparams hparams = model::read_hparams(file);
    const MemoryEstimate memory = estimate_memory(file, hparams, p.context_length, quant::Type::F16, 512);
    // 8,030,261,248 parameters (the model card) and our 64 rope factors; 65 norms of 4096 are F32.
    constexpr uint64_t kNormValues = (2 * 32 + 1) * 4096, kParameters = 8'030'261'248 + 64;
    // The embedding table (untied: the 8B has its own output matrix) is mapped, not counted.
    constexpr uint64_t kEmbeddingValues = uint64_t{128256} * 4096;
    EXPECT_EQ(memory.weights, 2 * (kParameters - kNormValues - 64 - kEmbeddingValues) + 4 * (kNormValues + 64));
    EXPECT_EQ(memory.embedding_mapped, 2 * kEmbeddingValues);
    // 2 (keys and values) × 32 layers × 8 KV heads × 131072 positions × 128 F16 values.
    EXPECT_EQ(memory.kv_cache, uint64_t{2} * 32 * 8 * 131072 * 256);
    EXPECT_EQ(estimate_memory(file, hparams, p.context_length, quant::Type::Q8_0, 512).kv_cache,
              uint64_t{2} * 32 * 8 * 131072 * 136);

    // With a context no machine has memory for (2^28 positions: 32 TiB of KV cache) the loader
    // refuses, with the figures and what to try.
    contents.set("llama.context_length", uint32_t{1} << 28);
    const fs::path huge = dir_ / "8b-huge-context.gguf";
    write_sparse_model(contents, huge);
    LoadOptions options = small_options(0);
    if (available_memory_bytes() == 0) GTEST_SKIP() << "no MemAvailable in /proc/meminfo";
    expect_load_error(huge,
                      {"8b-huge-context.gguf", "not enough memory", "KV cache for 268435456 tokens",
                       "35184.37 GB", "available", "--kv-type q8_0"},
                      options);
    options.check_memory = false;
    EXPECT_NO_THROW(LoadedModel::load(huge, options));
}

class SessionTest : public ::testing::Test {
  protected:
    static inline std::unique_ptr<LoadedModel> model_;  // context 64, batches of up to 64

    static void SetUpTestSuite() { model_ = LoadedModel::load(tiny_model().path(), small_options()); }
    static void TearDownTestSuite() { model_.reset(); }
};

TEST_F(SessionTest, EvaluatingPastTheContextThrowsAndKeepsTheTokens) {
    Session session(*model_);
    const std::vector<int32_t> first = prompt_tokens(40, 3);
    session.evaluate(first);
    const std::vector<int32_t> too_many = prompt_tokens(25, 4);
    try {
        session.evaluate(too_many);
        ADD_FAILURE() << "40 + 25 tokens fit a context of 64";
    } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("needs 25 tokens but only 24"), std::string::npos)
            << error.what();
    }
    EXPECT_EQ(session.tokens(), first);
    EXPECT_EQ(session.remaining(), 24);
    const std::vector<int32_t> fits = prompt_tokens(24, 4);
    session.evaluate(fits);
    EXPECT_EQ(session.remaining(), 0);
}

TEST_F(SessionTest, BadTokensAndBadTruncationAreRefused) {
    Session session(*model_);
    const std::vector<int32_t> first = prompt_tokens(5, 5);
    session.evaluate(first);
    const std::vector<int32_t> outside{1, 2, static_cast<int32_t>(kVocabSize)};
    EXPECT_THROW(session.evaluate(outside), Error);
    EXPECT_EQ(session.tokens(), first);
    EXPECT_THROW(session.evaluate(std::span<const int32_t>{}), Error);
    EXPECT_THROW(session.truncate(6), Error);
    EXPECT_THROW(session.truncate(-1), Error);
    EXPECT_EQ(session.tokens(), first);
}

TEST_F(SessionTest, ClearThenEvaluateMatchesAFreshSession) {
    const std::vector<int32_t> before = prompt_tokens(20, 6), after = prompt_tokens(9, 7);
    Session reused(*model_);
    reused.evaluate(before);
    reused.clear();
    EXPECT_TRUE(reused.tokens().empty());
    const std::vector<float> logits = copy(reused.evaluate(after));
    Session fresh(*model_);
    EXPECT_EQ(logits, copy(fresh.evaluate(after)));
}

// evaluate_top gives the largest of the logits evaluate gives, ranked, after prompts of one
// batch and of several, and after a decoded token.
TEST_F(SessionTest, TopLogitsAreTheLargestOfTheWholeRow) {
    const auto batched = LoadedModel::load(tiny_model().path(), small_options(64, 8));
    for (const LoadedModel* model : {model_.get(), batched.get()}) {
        Session whole(*model), top(*model);
        const std::vector<int32_t> prompt = prompt_tokens(20, 11);
        std::vector<float> logits = copy(whole.evaluate(prompt));
        for (const int k : {17, 1}) {
            std::vector<int32_t> ids(static_cast<size_t>(k));
            std::vector<float> values(static_cast<size_t>(k));
            backend::rank_top_k(logits.data(), static_cast<int64_t>(logits.size()), k, ids.data(), values.data());
            const std::vector<int32_t> next = {ids[0]};
            const Session::TopLogits got =
                k == 17 ? top.evaluate_top(prompt, k) : top.evaluate_top(std::vector<int32_t>{ids[0] == 0 ? 1 : 0}, k);
            if (k == 1) break;  // checked below, after the same token in both sessions
            EXPECT_EQ(std::vector<int32_t>(got.tokens.begin(), got.tokens.end()), ids);
            EXPECT_EQ(std::vector<float>(got.logits.begin(), got.logits.end()), values);
        }
        // One decoded token in both: the top 5 against the whole row.
        Session whole2(*model), top2(*model);
        whole2.evaluate(prompt);
        top2.evaluate_top(prompt, 3);
        const std::vector<int32_t> token = {42};
        logits = copy(whole2.evaluate(token));
        std::vector<int32_t> ids(5);
        std::vector<float> values(5);
        backend::rank_top_k(logits.data(), static_cast<int64_t>(logits.size()), 5, ids.data(), values.data());
        const Session::TopLogits got = top2.evaluate_top(token, 5);
        EXPECT_EQ(std::vector<int32_t>(got.tokens.begin(), got.tokens.end()), ids);
        EXPECT_EQ(std::vector<float>(got.logits.begin(), got.logits.end()), values);
        EXPECT_EQ(top2.tokens(), whole2.tokens());
    }
}

TEST_F(SessionTest, TopLogitsOutOfRangeAreRefusedAndKeepTheTokens) {
    Session session(*model_);
    const std::vector<int32_t> first = prompt_tokens(5, 12);
    session.evaluate(first);
    const std::vector<int32_t> more = prompt_tokens(3, 13);
    EXPECT_THROW(session.evaluate_top(more, 0), Error);
    EXPECT_THROW(session.evaluate_top(more, backend::Backend::kMaxTopK + 1), Error);
    EXPECT_EQ(session.tokens(), first);
}

// The cache past the truncation point still holds the old tokens' keys and values (positions
// 8 and 9 below are never overwritten); attention must not see them.
TEST_F(SessionTest, TruncateThenEvaluateMatchesAFreshSession) {
    const std::vector<int32_t> kept = prompt_tokens(5, 8), dropped = prompt_tokens(5, 9),
                               next = prompt_tokens(3, 10);
    Session reused(*model_);
    reused.evaluate(kept);
    reused.evaluate(dropped);
    reused.truncate(5);
    EXPECT_EQ(reused.tokens(), kept);
    const std::vector<float> logits = copy(reused.evaluate(next));

    Session fresh(*model_);
    fresh.evaluate(kept);
    EXPECT_EQ(logits, copy(fresh.evaluate(next)));
}

// Token by token, each matmul differs from the batched one by f32 summation order only; but the
// F16 matmuls round their activations to f16, and a last-bit difference can move a value across
// a rounding boundary, a step of 2^-11 of it. So the two agree to the f16 precision the F16
// model's reference agreement allows (1e-3; forward_vs_numpy_test), not to f32's. A wrong
// position or a skipped cache entry moves the logits by their whole range.
TEST_F(SessionTest, OneCallMatchesTokenByToken) {
    const std::vector<int32_t> prompt = prompt_tokens(12, 11);
    Session batched(*model_);
    const std::vector<float> expected = copy(batched.evaluate(prompt));
    Session single(*model_);
    std::vector<float> logits;
    for (const int32_t token : prompt) logits = copy(single.evaluate(std::span(&token, 1)));
    EXPECT_EQ(single.tokens(), prompt);
    EXPECT_LT(relative_difference(expected, logits), 1e-3);
}

TEST_F(SessionTest, BatchSizeDoesNotChangeTheLogits) {
    const auto small_batches = LoadedModel::load(tiny_model().path(), small_options(64, 7));
    EXPECT_EQ(small_batches->options().batch_size, 7);
    const std::vector<int32_t> prompt = prompt_tokens(30, 12);  // batches of 7, 7, 7, 7 and 2
    Session whole(*model_), in_sevens(*small_batches);
    std::vector<int64_t> progress;
    const std::vector<float> expected = copy(whole.evaluate(prompt));
    const std::vector<float> logits = copy(in_sevens.evaluate(prompt, [&](int64_t done, int64_t total) {
        EXPECT_EQ(total, 30);
        progress.push_back(done);
    }));
    EXPECT_EQ(progress, (std::vector<int64_t>{7, 14, 21, 28, 30}));
    EXPECT_LT(relative_difference(expected, logits), 1e-4);
}

}  // namespace
}  // namespace hearth::runtime
