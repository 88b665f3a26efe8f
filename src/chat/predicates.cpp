// Jinja tests (`x is defined`, `x is string`, `x is equalto y`, ...) with jinja2's meanings.
#include <fmt/format.h>

#include "chat/renderer.h"

namespace hearth::chat::jinja {
namespace {

const Value& test_argument(const CallArgs& args, std::string_view test) {
    if (args.positional.empty() && args.keyword.empty()) runtime_error(fmt::format("test '{}' needs an argument", test));
    return args.positional.empty() ? args.keyword.front().second : args.positional.front();
}

int64_t integer_for(const Value& value, std::string_view test) {
    if (value.is_int()) return value.as_int();
    if (value.is_bool()) return value.as_bool();
    runtime_error(fmt::format("test '{}' needs an integer, not '{}'", test, type_name(value)));
}

bool compare_test(std::string_view name, const Value& input, const CallArgs& args, bool& matched) {
    matched = true;
    if (name == "equalto" || name == "eq" || name == "==") return python_equal(input, test_argument(args, name));
    if (name == "ne" || name == "!=") return !python_equal(input, test_argument(args, name));
    if (name == "lt" || name == "lessthan" || name == "<") return python_less(input, test_argument(args, name));
    if (name == "gt" || name == "greaterthan" || name == ">") return python_less(test_argument(args, name), input);
    if (name == "le" || name == "<=") return !python_less(test_argument(args, name), input);
    if (name == "ge" || name == ">=") return !python_less(input, test_argument(args, name));
    if (name == "in") return contains(test_argument(args, name), input);
    if (name == "sameas") {
        const Value& other = test_argument(args, name);
        if (input.kind() != other.kind()) return false;
        if (input.is_list() || input.is_dict() || input.is_callable()) return python_equal(input, other) && python_repr(input) == python_repr(other);
        return python_equal(input, other);
    }
    matched = false;
    return false;
}

}  // namespace

bool is_known_test(std::string_view name) {
    static constexpr std::string_view kNames[] = {
        "defined", "undefined", "none",   "boolean", "true",   "false",  "integer",     "float",   "number",
        "string",  "mapping",   "iterable", "sequence", "callable", "odd", "even",      "divisibleby", "lower",
        "upper",   "escaped",   "equalto", "eq",      "==",     "ne",     "!=",          "lt",      "lessthan",
        "<",       "gt",        "greaterthan", ">",   "le",     "<=",     "ge",          ">=",      "in",
        "sameas"};
    return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

bool apply_test(Renderer& renderer, std::string_view name, const Value& input, CallArgs& args) {
    (void)renderer;
    const Kind kind = input.kind();
    if (name == "defined") return kind != Kind::Undefined;
    if (name == "undefined") return kind == Kind::Undefined;
    if (name == "none") return kind == Kind::None;
    if (name == "boolean") return kind == Kind::Bool;
    if (name == "true") return kind == Kind::Bool && input.as_bool();
    if (name == "false") return kind == Kind::Bool && !input.as_bool();
    if (name == "integer") return kind == Kind::Int;
    if (name == "float") return kind == Kind::Float;
    if (name == "number") return input.is_number();
    if (name == "string") return kind == Kind::String;
    if (name == "mapping") return kind == Kind::Dict && input.as_dict().flavor == DictFlavor::Plain;
    // Undefined is iterable (empty) and a sequence in jinja2, as a string is.
    if (name == "iterable") return kind == Kind::Undefined || kind == Kind::String || kind == Kind::List ||
                                   (kind == Kind::Dict && input.as_dict().flavor == DictFlavor::Plain);
    if (name == "sequence") return kind == Kind::Undefined || kind == Kind::String || kind == Kind::List ||
                                   (kind == Kind::Dict && input.as_dict().flavor == DictFlavor::Plain);
    if (name == "callable") return kind == Kind::Callable;
    if (name == "odd") return integer_for(input, name) % 2 != 0;
    if (name == "even") return integer_for(input, name) % 2 == 0;
    if (name == "divisibleby") {
        const int64_t divisor = integer_for(test_argument(args, name), name);
        if (divisor == 0) runtime_error("integer division or modulo by zero");
        return divisor == -1 || integer_for(input, name) % divisor == 0;
    }
    if (name == "lower" || name == "upper") {
        const std::string text = python_str(input);
        return name == "lower" ? python_lower(text) == text : python_upper(text) == text;
    }
    if (name == "escaped") return false;
    bool matched = false;
    const bool result = compare_test(name, input, args, matched);
    if (matched) return result;
    runtime_error(fmt::format("no test named '{}'", name));
}

}  // namespace hearth::chat::jinja
