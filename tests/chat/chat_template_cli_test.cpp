// `hearth chat-template` on a test model with the real Llama 3.1 template (issue 3, item 10).
// Runs the built binary; skipped when it has not been built.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "chat/chat_template.h"
#include "common/run_command.h"
#include "jinja_reference.h"

namespace hearth::chat {
namespace {

// hearth's errors go to stderr; the tests read them with the output.
hearth::testing::CommandResult run_command(const std::string& command) {
    return hearth::testing::run_command(command + " 2>&1");
}

class ChatTemplateCli : public ::testing::Test {
  protected:
    // One tiny model (its tokenizer.chat_template is the Llama 3.1 template) for the suite.
    static void SetUpTestSuite() {
        if (!std::filesystem::exists(HEARTH_BINARY)) return;
        dir_ = std::filesystem::temp_directory_path() / ("hearth-chat-cli-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        model_ = (dir_ / "tiny.gguf").string();
        model_made_ = run_command(std::string(HEARTH_BINARY) + " make-test-model --preset tiny -o " + model_).exit_code == 0;
    }
    static void TearDownTestSuite() {
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }
    void SetUp() override {
        if (!std::filesystem::exists(HEARTH_BINARY)) GTEST_SKIP() << "hearth binary not built";
        ASSERT_TRUE(model_made_) << "hearth make-test-model failed";
    }

    std::string write(const std::string& name, const std::string& text) {
        const auto path = dir_ / name;
        std::ofstream(path) << text;
        return path.string();
    }

    static inline std::filesystem::path dir_;
    static inline std::string model_;
    static inline bool model_made_ = false;
};

TEST_F(ChatTemplateCli, PrintsTheRenderedPromptWithToolsAndWithoutGenerationPrompt) {
    const auto data = nlohmann::ordered_json::parse(testing::read_text_file(testing::chat_test_data("messages/tools_in_user_message.json")));
    const std::string messages = write("messages.json", data["messages"].dump());
    const std::string tools = write("tools.json", data["tools"].dump());
    const auto result = run_command(std::string(HEARTH_BINARY) + " chat-template -m " + model_ + " --messages " + messages +
                                    " --tools " + tools + " --no-generation-prompt");
    ASSERT_EQ(result.exit_code, 0) << result.output;

    ChatTemplateOptions options;
    options.add_generation_prompt = false;
    options.bos_token = "<|begin_of_text|>";
    options.eos_token = "<|eot_id|>";
    const auto source = testing::read_text_file(testing::chat_test_data("templates/llama3.1.jinja"));
    EXPECT_EQ(result.output, render_chat_template(source, data["messages"], data["tools"], options));
    EXPECT_EQ(result.output.rfind("<|begin_of_text|>", 0), 0u);
}

TEST_F(ChatTemplateCli, GenerationPromptIsOnByDefault) {
    const std::string messages = write("m.json", R"([{"role": "user", "content": "Hi"}])");
    const auto result = run_command(std::string(HEARTH_BINARY) + " chat-template -m " + model_ + " --messages " + messages);
    ASSERT_EQ(result.exit_code, 0) << result.output;
    const std::string tail = "<|start_header_id|>assistant<|end_header_id|>\n\n";
    ASSERT_GE(result.output.size(), tail.size());
    EXPECT_EQ(result.output.substr(result.output.size() - tail.size()), tail);
}

TEST_F(ChatTemplateCli, MalformedMessagesGiveAClearError) {
    const std::string missing_role = write("bad.json", R"([{"content": "Hi"}])");
    auto result = run_command(std::string(HEARTH_BINARY) + " chat-template -m " + model_ + " --messages " + missing_role);
    EXPECT_NE(result.exit_code, 0);
    EXPECT_NE(result.output.find("messages[0]: missing \"role\""), std::string::npos) << result.output;

    const std::string not_json = write("broken.json", "[{");
    result = run_command(std::string(HEARTH_BINARY) + " chat-template -m " + model_ + " --messages " + not_json);
    EXPECT_NE(result.exit_code, 0);
    EXPECT_NE(result.output.find("is not valid JSON"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace hearth::chat
