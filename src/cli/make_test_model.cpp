// hearth make-test-model: a Llama 3.1-architecture GGUF with the real tokenizer and seeded
// random weights.
#include <cstdio>
#include <string>

#include "cli/cli.h"
#include "cli/progress.h"
#include "common/error.h"
#include "common/parallel.h"
#include "model/test_model.h"

namespace hearth::cli {
namespace {

struct MakeTestModelArgs {
    std::string preset = "tiny";
    std::string type = "F16";
    uint64_t seed = 42;
    double output_scale = 1.0;
    int threads = default_thread_count();
    std::string output;
};

void make_test_model(const MakeTestModelArgs& args) {
    model::TestModelOptions options;
    options.preset = model::find_test_model_preset(args.preset);
    if (!options.preset) fail("make-test-model: unknown preset '{}' (choose tiny, 1b or 8b)", args.preset);
    options.mix = quant::find_mix(args.type);
    if (!options.mix) fail("make-test-model: unknown type '{}' (see hearth quantize --help for the list)", args.type);
    options.seed = args.seed;
    options.output_scale = args.output_scale;
    options.threads = args.threads;

    std::fprintf(stderr, "writing %s: preset %s (%.2f B parameters), %s, seed %llu\n", args.output.c_str(),
                 args.preset.c_str(), model::test_model_parameter_count(*options.preset) / 1e9,
                 std::string(options.mix->name).c_str(), static_cast<unsigned long long>(args.seed));
    ProgressBar bar("make-test-model");
    model::write_test_model(options, args.output, [&](uint64_t done, uint64_t total) { bar.update(done, total); });
    bar.finish();
}

}  // namespace

void add_make_test_model(CLI::App& app) {
    auto args = std::make_shared<MakeTestModelArgs>();
    CLI::App* cmd = app.add_subcommand(
        "make-test-model",
        "Write a test model: the real Llama 3.1 architecture, metadata and tokenizer with seeded random weights.");
    cmd->add_option("--preset", args->preset,
                    "Shape: tiny (2 layers, 256 wide), 1b (Llama 3.2 1B, tied output), 8b (Llama 3.1 8B exactly)")
        ->capture_default_str()
        ->check(CLI::IsMember({"tiny", "1b", "8b"}));
    cmd->add_option("--type", args->type,
                    "Tensor type mix, as llama-quantize names them (F16, Q8_0, Q4_K_M, ...). Weights are those of "
                    "the F16 model, quantized exactly as `hearth quantize` would")
        ->capture_default_str();
    cmd->add_option("--seed", args->seed, "Random seed: the same seed gives the same bytes")->capture_default_str();
    cmd->add_option("--output-scale", args->output_scale,
                    "Multiply the output projection's spread (std 0.02) by S; use ~50 for confident logits in "
                    "agreement tests between engines")
        ->capture_default_str();
    cmd->add_option("-t,--threads", args->threads, "Threads")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("-o,--output", args->output, "Output GGUF file")->required();
    cmd->footer("Example:\n  hearth make-test-model --preset 8b --type Q4_K_M --seed 1 -o llama-8b-q4_k_m.gguf");
    cmd->callback([args] { make_test_model(*args); });
}

}  // namespace hearth::cli
