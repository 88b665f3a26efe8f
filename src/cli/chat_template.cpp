// hearth chat-template. Placeholder until the template engine lands (issue 3).
#include "cli/cli.h"
#include "common/error.h"

namespace hearth::cli {

void add_chat_template(CLI::App& app) {
    app.add_subcommand("chat-template", "Render a model's chat template (not yet available)")->callback([] {
        fail("chat-template: not yet available");
    });
}

}  // namespace hearth::cli
