// Python's binary operators on Jinja values (+ - * / // % ** ~), `in`, and str.strip.
#include <cmath>

#include <fmt/format.h>

#include "chat/renderer.h"

namespace hearth::chat::jinja {
namespace {

int64_t int_of(const Value& v) { return v.is_bool() ? int64_t{v.as_bool()} : v.as_int(); }

[[noreturn]] void unsupported(std::string_view op, const Value& left, const Value& right) {
    runtime_error(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(left), type_name(right)));
}

[[noreturn]] void overflow() { runtime_error("integer overflow (values beyond 64 bits are not supported)"); }

Value repeat(Renderer& renderer, const Value& sequence, int64_t count) {
    count = std::max<int64_t>(count, 0);
    if (sequence.is_string()) {
        const std::string& text = sequence.as_string();
        if (!text.empty()) renderer.check_string_size(text.size() * static_cast<size_t>(std::min<int64_t>(count, INT32_MAX)));
        std::string out;
        for (int64_t i = 0; i < count && !text.empty(); ++i) out += text;
        return out;
    }
    const List& list = sequence.as_list();
    if (!list.items.empty()) renderer.check_list_size(list.items.size() * static_cast<size_t>(std::min<int64_t>(count, INT32_MAX)));
    List* out = renderer.heap().new_list(list.is_tuple);
    for (int64_t i = 0; i < count && !list.items.empty(); ++i) out->items.insert(out->items.end(), list.items.begin(), list.items.end());
    return out;
}

double python_float_mod(double a, double b) {
    double mod = std::fmod(a, b);
    if (mod != 0 && ((b < 0) != (mod < 0))) mod += b;
    return mod;
}

Value integer_power(int64_t base, int64_t exponent) {
    if (exponent < 0) return std::pow(static_cast<double>(base), static_cast<double>(exponent));
    int64_t result = 1;
    for (int64_t i = 0; i < exponent; ++i) {
        if (__builtin_mul_overflow(result, base, &result)) overflow();
        if (result == 0 || result == 1) break;
        if (result == -1) return (exponent % 2 == 0) ? int64_t{1} : int64_t{-1};
    }
    return result;
}

Value arithmetic(std::string_view op, const Value& left, const Value& right) {
    if (left.is_float() || right.is_float() || op == "/") {
        const double a = left.to_double();
        const double b = right.to_double();
        if ((op == "/" || op == "//" || op == "%") && b == 0) runtime_error("division by zero");
        if (op == "+") return a + b;
        if (op == "-") return a - b;
        if (op == "*") return a * b;
        if (op == "/") return a / b;
        if (op == "//") return std::floor(a / b);
        if (op == "%") return python_float_mod(a, b);
        return std::pow(a, b);
    }
    const int64_t a = int_of(left);
    const int64_t b = int_of(right);
    int64_t result = 0;
    if (op == "+") {
        if (__builtin_add_overflow(a, b, &result)) overflow();
    } else if (op == "-") {
        if (__builtin_sub_overflow(a, b, &result)) overflow();
    } else if (op == "*") {
        if (__builtin_mul_overflow(a, b, &result)) overflow();
    } else if (op == "//" || op == "%") {
        if (b == 0) runtime_error("integer division or modulo by zero");
        if (a == INT64_MIN && b == -1) overflow();
        int64_t quotient = a / b;
        int64_t remainder = a % b;
        if (remainder != 0 && ((remainder < 0) != (b < 0))) {
            --quotient;
            remainder += b;
        }
        result = op == "//" ? quotient : remainder;
    } else {
        return integer_power(a, b);
    }
    return result;
}

}  // namespace

Value binary_operator(Renderer& renderer, std::string_view op, const Value& left, const Value& right) {
    if (op == "~") {
        std::string out = python_str(left) + python_str(right);
        renderer.check_string_size(out.size());
        return out;
    }
    if (left.is_undefined()) undefined_error(left);
    if (right.is_undefined()) undefined_error(right);
    if (left.is_number() && right.is_number()) return arithmetic(op, left, right);
    if (op == "+" && left.is_string() && right.is_string()) {
        renderer.check_string_size(left.as_string().size() + right.as_string().size());
        return left.as_string() + right.as_string();
    }
    if (op == "+" && left.is_list() && right.is_list() && left.as_list().is_tuple == right.as_list().is_tuple) {
        renderer.check_list_size(left.as_list().items.size() + right.as_list().items.size());
        List* list = renderer.heap().new_list(left.as_list().is_tuple);
        list->items = left.as_list().items;
        list->items.insert(list->items.end(), right.as_list().items.begin(), right.as_list().items.end());
        return list;
    }
    if (op == "*") {
        if ((left.is_string() || left.is_list()) && (right.is_int() || right.is_bool())) return repeat(renderer, left, int_of(right));
        if ((right.is_string() || right.is_list()) && (left.is_int() || left.is_bool())) return repeat(renderer, right, int_of(left));
    }
    if (op == "%" && left.is_string()) runtime_error("printf-style string formatting with % is not supported in chat templates");
    if (op == "+" && left.is_string()) {
        runtime_error(fmt::format("can only concatenate str (not \"{}\") to str", type_name(right)));
    }
    unsupported(op == "**" ? "** or pow()" : op, left, right);
}

bool contains(const Value& container, const Value& item) {
    switch (container.kind()) {
        case Kind::Undefined: return false;
        case Kind::String:
            if (!item.is_string()) runtime_error(fmt::format("'in <string>' requires string as left operand, not {}", type_name(item)));
            return container.as_string().find(item.as_string()) != std::string::npos;
        case Kind::List:
            for (const auto& element : container.as_list().items)
                if (python_equal(element, item)) return true;
            return false;
        case Kind::Dict:
            if (container.as_dict().flavor == DictFlavor::Plain) return container.as_dict().find(item) != nullptr;
            break;
        default: break;
    }
    runtime_error(fmt::format("argument of type '{}' is not iterable", type_name(container)));
}

// str.strip / lstrip / rstrip: Python's whitespace (ASCII part) or the given characters.
std::string python_strip(std::string_view text, const Value* chars, bool left, bool right) {
    const bool by_whitespace = !chars || chars->is_none() || chars->is_undefined();
    if (!by_whitespace && !chars->is_string()) runtime_error("strip arg must be None or str");
    const auto characters = utf8_characters(text);
    const auto strip_set = by_whitespace ? std::vector<std::string>{} : utf8_characters(chars->as_string());
    auto strippable = [&](const std::string& c) {
        if (by_whitespace) return c.size() == 1 && (std::string_view(" \t\n\r\v\f\x1c\x1d\x1e\x1f").find(c[0]) != std::string_view::npos);
        return std::find(strip_set.begin(), strip_set.end(), c) != strip_set.end();
    };
    size_t begin = 0;
    size_t end = characters.size();
    while (left && begin < end && strippable(characters[begin])) ++begin;
    while (right && end > begin && strippable(characters[end - 1])) --end;
    std::string out;
    for (size_t i = begin; i < end; ++i) out += characters[i];
    return out;
}

}  // namespace hearth::chat::jinja
