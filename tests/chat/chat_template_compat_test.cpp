// Issue 3, item 8: hearth renders real chat templates byte for byte as Hugging Face
// transformers does (Python jinja2), for six model families over the same message sets, with
// and without the generation prompt. Where the reference fails (a template that rejects a
// message set through raise_exception, or a Python error), hearth must fail too, and a
// raise_exception must carry the same message.
#include <gtest/gtest.h>

#include <map>

#include "chat/chat_template.h"
#include "jinja_reference.h"

namespace hearth::chat {
namespace {

using nlohmann::ordered_json;
using testing::chat_test_data;
using testing::read_text_file;

struct Case {
    std::string family;
    std::string message_set;
    bool add_generation_prompt;
    std::string template_source;
    ordered_json messages, tools;
    ChatTemplateOptions options;
};

std::vector<std::string> message_set_names() {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(chat_test_data("messages")))
        if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<Case> all_cases() {
    const auto families = ordered_json::parse(read_text_file(chat_test_data("families.json")));
    std::vector<Case> cases;
    for (const auto& [family, spec] : families.items()) {
        const std::string source = read_text_file(chat_test_data(spec["template"].get<std::string>()));
        for (const auto& set : message_set_names()) {
            const auto data = ordered_json::parse(read_text_file(chat_test_data("messages/" + set + ".json")));
            for (bool add_generation_prompt : {false, true}) {
                Case c{family, set, add_generation_prompt, source, data["messages"], data["tools"], {}};
                c.options.add_generation_prompt = add_generation_prompt;
                c.options.bos_token = spec["bos_token"];
                c.options.eos_token = spec["eos_token"];
                c.options.extra_context = data["context"];
                c.options.now = testing::reference_now();
                cases.push_back(std::move(c));
            }
        }
    }
    return cases;
}

// The variables transformers' apply_chat_template passes to render().
ordered_json reference_variables(const Case& c) {
    ordered_json variables = {{"messages", c.messages},
                              {"tools", c.tools},
                              {"documents", nullptr},
                              {"add_generation_prompt", c.add_generation_prompt},
                              {"bos_token", c.options.bos_token},
                              {"eos_token", c.options.eos_token}};
    for (const auto& [key, value] : c.options.extra_context.items()) variables[key] = value;
    return variables;
}

TEST(ChatTemplateCompat, SixFamiliesRenderByteIdenticalToPythonJinja) {
    const auto cases = all_cases();
    ordered_json requests = ordered_json::array();
    for (const auto& c : cases) requests.push_back({{"template", c.template_source}, {"variables", reference_variables(c)}});
    const ordered_json expected = testing::run_jinja_reference(requests);
    ASSERT_EQ(expected.size(), cases.size());

    std::map<std::string, int> rendered_per_family;
    for (size_t i = 0; i < cases.size(); ++i) {
        const Case& c = cases[i];
        SCOPED_TRACE(c.family + " × " + c.message_set + (c.add_generation_prompt ? " (generation prompt)" : ""));
        const auto& reference = expected[i];
        if (reference.contains("output")) {
            std::string ours;
            ASSERT_NO_THROW(ours = ChatTemplate(c.template_source).render(c.messages, c.tools, c.options));
            EXPECT_EQ(ours, reference["output"].get<std::string>());
            ++rendered_per_family[c.family];
            continue;
        }
        try {
            const std::string ours = ChatTemplate(c.template_source).render(c.messages, c.tools, c.options);
            ADD_FAILURE() << "Python failed with " << reference["error"] << " but hearth rendered:\n" << ours;
        } catch (const TemplateError& error) {
            EXPECT_EQ(error.raised_by_template(), reference["raised"].get<bool>()) << error.what() << " vs " << reference["error"];
            if (error.raised_by_template()) {
                EXPECT_EQ("TemplateError: " + error.detail(), reference["error"].get<std::string>());
            }
        }
    }
    // Every family renders most message sets (the rest are rejected by the template itself).
    for (const auto& [family, count] : rendered_per_family) {
        std::printf("%-14s %d of %zu renders byte-identical\n", family.c_str(), count, message_set_names().size() * 2);
    }
    EXPECT_EQ(rendered_per_family.size(), 6u);
}

TEST(ChatTemplateCompat, Llama31CoversEveryMessageSetWithoutErrors) {
    const auto source = read_text_file(chat_test_data("templates/llama3.1.jinja"));
    for (const auto& set : message_set_names()) {
        const auto data = ordered_json::parse(read_text_file(chat_test_data("messages/" + set + ".json")));
        ChatTemplateOptions options;
        options.bos_token = "<|begin_of_text|>";
        options.extra_context = data["context"];
        EXPECT_NO_THROW(render_chat_template(source, data["messages"], data["tools"], options)) << set;
    }
}

}  // namespace
}  // namespace hearth::chat
