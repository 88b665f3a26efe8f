// The engine against Python jinja2 on small templates that each exercise a group of
// constructs: literals and printing, arithmetic, comparisons, loops and loop.*, scoping,
// namespaces, macros and call blocks, filter blocks, every filter, method and test a chat
// template uses, whitespace control, raw blocks, string escapes, strftime_now and errors.
// The cases live in data/snippets.txt, separated by lines of "=====".
#include <gtest/gtest.h>

#include "chat/chat_template.h"
#include "jinja_reference.h"

namespace hearth::chat {
namespace {

using nlohmann::ordered_json;

std::vector<std::string> load_snippets() {
    const std::string text = testing::read_text_file(testing::chat_test_data("snippets.txt"));
    std::vector<std::string> snippets;
    const std::string separator = "\n=====\n";
    size_t start = 0;
    while (true) {
        const size_t end = text.find(separator, start);
        snippets.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) break;
        start = end + separator.size();
    }
    return snippets;
}

const ordered_json& snippet_variables() {
    static const ordered_json variables = ordered_json::parse(R"({
        "s": "Hello World", "n": 7, "f": 2.5, "t": true, "none_value": null, "l": [3, 1, 2],
        "d": {"b": 1, "a": 2},
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
                     {"role": "assistant", "content": ""}, {"role": "user", "content": "bye"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "nested": {"z": [1, 2, {"y": "é", "x": null}], "a": {}}
    })");
    return variables;
}

TEST(JinjaSemantics, SnippetsMatchPythonJinja) {
    const auto snippets = load_snippets();
    ordered_json requests = ordered_json::array();
    for (const auto& snippet : snippets) requests.push_back({{"template", snippet}, {"variables", snippet_variables()}});
    const ordered_json expected = testing::run_jinja_reference(requests);
    ASSERT_EQ(expected.size(), snippets.size());
    ChatTemplateOptions options;
    options.now = testing::reference_now();
    for (size_t i = 0; i < snippets.size(); ++i) {
        SCOPED_TRACE("snippet " + std::to_string(i + 1) + ":\n" + snippets[i]);
        const auto& reference = expected[i];
        try {
            const std::string ours = render_jinja(snippets[i], snippet_variables(), options);
            if (reference.contains("output")) {
                EXPECT_EQ(ours, reference["output"].get<std::string>());
            } else {
                ADD_FAILURE() << "Python failed with " << reference["error"] << " but hearth rendered:\n" << ours;
            }
        } catch (const TemplateError& error) {
            ASSERT_TRUE(reference.contains("error")) << "hearth failed: " << error.what() << "\nPython rendered:\n"
                                                     << reference["output"].get<std::string>();
            EXPECT_EQ(error.raised_by_template(), reference["raised"].get<bool>()) << error.what();
        }
    }
}

}  // namespace
}  // namespace hearth::chat
