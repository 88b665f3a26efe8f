// hearth tokenize / detokenize. Placeholder until the tokenizer lands (issue 3).
#include "cli/cli.h"
#include "common/error.h"

namespace hearth::cli {

void add_tokenize(CLI::App& app) {
    app.add_subcommand("tokenize", "Text to token ids (not yet available)")->callback([] {
        fail("tokenize: not yet available");
    });
}

void add_detokenize(CLI::App& app) {
    app.add_subcommand("detokenize", "Token ids to text (not yet available)")->callback([] {
        fail("detokenize: not yet available");
    });
}

}  // namespace hearth::cli
