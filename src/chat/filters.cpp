// Jinja filters (`x | name(args)`), each as jinja2/filters.py defines it; `tojson` is the one
// Hugging Face installs: json.dumps(x, ensure_ascii=False, indent, separators, sort_keys).
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "chat/renderer.h"

namespace hearth::chat::jinja {
namespace {

using FilterFunction = Value (*)(Renderer&, const Value&, CallArgs&);

const Value* arg(const CallArgs& args, size_t index, std::string_view name) { return args.get(index, name); }

bool bool_arg(const CallArgs& args, size_t index, std::string_view name, bool fallback) {
    const Value* value = arg(args, index, name);
    return value ? truthy(*value) : fallback;
}

List* list_of(Renderer& r, std::vector<Value> items) {
    r.check_list_size(items.size());
    List* list = r.heap().new_list();
    list->items = std::move(items);
    return list;
}

// `attribute="a.b.0"`: each dotted part looked up as jinja2's environment.getitem does.
Value lookup_attribute(Renderer& r, Value value, const std::string& attribute) {
    size_t start = 0;
    while (true) {
        const size_t dot = attribute.find('.', start);
        const std::string part = attribute.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        const bool numeric = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos && part.size() < 18;
        value = r.get_item(value, numeric ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
        if (dot == std::string::npos) return value;
        start = dot + 1;
    }
}

// The sort key: the attribute if asked for, lower-cased when comparing without case.
Value sort_key(Renderer& r, const Value& item, const Value* attribute, bool case_sensitive) {
    Value key = attribute && !attribute->is_none() ? lookup_attribute(r, item, python_str(*attribute)) : item;
    if (!case_sensitive && key.is_string()) return python_lower(key.as_string());
    return key;
}

Value filter_trim(Renderer&, const Value& input, CallArgs& args) { return python_strip(python_str(input), arg(args, 0, "chars"), true, true); }
Value filter_upper(Renderer&, const Value& input, CallArgs&) { return python_upper(python_str(input)); }
Value filter_lower(Renderer&, const Value& input, CallArgs&) { return python_lower(python_str(input)); }
Value filter_capitalize(Renderer&, const Value& input, CallArgs&) { return python_capitalize(python_str(input)); }
Value filter_string(Renderer&, const Value& input, CallArgs&) { return python_str(input); }
Value filter_safe(Renderer&, const Value& input, CallArgs&) { return input; }

// jinja2's title: each chunk after a run of [-\s({[<] gets its first letter upper-cased.
Value filter_title(Renderer&, const Value& input, CallArgs&) {
    const std::string text = python_str(input);
    std::string out;
    bool word_start = true;
    for (char c : text) {
        const bool separator = std::string_view("- \t\n\r\v\f({[<").find(c) != std::string_view::npos;
        const auto byte = static_cast<unsigned char>(c);
        if (separator) out += c;
        else if (byte >= 0x80) out += c;
        else out += static_cast<char>(word_start ? std::toupper(byte) : std::tolower(byte));
        word_start = separator;
    }
    return out;
}

Value filter_escape(Renderer&, const Value& input, CallArgs&) {
    std::string out;
    for (char c : python_str(input)) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

Value filter_length(Renderer&, const Value& input, CallArgs&) {
    switch (input.kind()) {
        case Kind::Undefined: return int64_t{0};
        case Kind::String: return static_cast<int64_t>(utf8_length(input.as_string()));
        case Kind::List: return static_cast<int64_t>(input.as_list().items.size());
        case Kind::Dict:
            if (input.as_dict().flavor == DictFlavor::Plain) return static_cast<int64_t>(input.as_dict().items.size());
            break;
        default: break;
    }
    runtime_error(fmt::format("object of type '{}' has no len()", type_name(input)));
}

Value filter_replace(Renderer& r, const Value& input, CallArgs& args) {
    const Value* old = arg(args, 0, "old");
    const Value* replacement = arg(args, 1, "new");
    if (!old || !replacement) runtime_error("replace() needs the old and the new text");
    const Value* count = arg(args, 2, "count");
    int64_t limit = -1;
    if (count && !count->is_none()) {
        if (!count->is_int()) runtime_error("replace() count must be an integer");
        limit = count->as_int();
    }
    return python_replace(r, python_str(input), python_str(*old), python_str(*replacement), limit);
}

Value filter_join(Renderer& r, const Value& input, CallArgs& args) {
    const Value* separator = arg(args, 0, "d");
    const Value* attribute = arg(args, 1, "attribute");
    const std::string glue = separator ? python_str(*separator) : "";
    std::string out;
    bool first = true;
    for (const auto& item : r.iterate(input)) {
        if (!first) out += glue;
        first = false;
        out += python_str(attribute && !attribute->is_none() ? lookup_attribute(r, item, python_str(*attribute)) : item);
        r.check_string_size(out.size());
    }
    return out;
}

Value filter_first(Renderer& r, const Value& input, CallArgs&) {
    auto items = r.iterate(input);
    if (items.empty()) return Undefined{"No first item, sequence was empty."};
    return items.front();
}

Value filter_last(Renderer& r, const Value& input, CallArgs&) {
    auto items = r.iterate(input);
    if (items.empty()) return Undefined{"No last item, sequence was empty."};
    return items.back();
}

Value filter_list(Renderer& r, const Value& input, CallArgs&) { return list_of(r, r.iterate(input)); }

Value filter_reverse(Renderer& r, const Value& input, CallArgs&) {
    if (input.is_string()) {
        auto characters = utf8_characters(input.as_string());
        std::string out;
        for (auto it = characters.rbegin(); it != characters.rend(); ++it) out += *it;
        return out;
    }
    auto items = r.iterate(input);
    std::reverse(items.begin(), items.end());
    return list_of(r, std::move(items));
}

Value filter_items(Renderer& r, const Value& input, CallArgs&) {
    if (input.is_undefined()) return list_of(r, {});
    if (!input.is_dict() || input.as_dict().flavor != DictFlavor::Plain) runtime_error("Can only get item pairs from a mapping.");
    std::vector<Value> pairs;
    for (const auto& [key, value] : input.as_dict().items) {
        List* pair = r.heap().new_list(true);
        pair->items = {key, value};
        pairs.emplace_back(pair);
    }
    return list_of(r, std::move(pairs));
}

Value filter_default(Renderer&, const Value& input, CallArgs& args) {
    const Value* fallback = arg(args, 0, "default_value");
    const bool boolean = bool_arg(args, 1, "boolean", false);
    if (input.is_undefined() || (boolean && !truthy(input))) return fallback ? *fallback : Value(std::string());
    return input;
}

Value filter_tojson(Renderer& r, const Value& input, CallArgs& args) {
    JsonDumpOptions options;
    options.ensure_ascii = bool_arg(args, 0, "ensure_ascii", false);
    if (const Value* indent = arg(args, 1, "indent"); indent && !indent->is_none()) {
        if (indent->is_string()) options.indent = indent->as_string();
        else if (indent->is_int() || indent->is_bool()) options.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent->is_bool() ? indent->as_bool() : indent->as_int(), 0, 1000)), ' ');
        else runtime_error("tojson indent must be an integer or a string");
        options.item_separator = std::string(1, ',');  // string(const char*) trips GCC 12 -Wrestrict (bug 105329)
    }
    if (const Value* separators = arg(args, 2, "separators"); separators && !separators->is_none()) {
        if (!separators->is_list() || separators->as_list().items.size() != 2 || !separators->as_list().items[0].is_string() ||
            !separators->as_list().items[1].is_string())
            runtime_error("tojson separators must be a pair of strings");
        options.item_separator = separators->as_list().items[0].as_string();
        options.key_separator = separators->as_list().items[1].as_string();
    }
    options.sort_keys = bool_arg(args, 3, "sort_keys", false);
    std::string out = python_json_dumps(input, options);
    r.check_string_size(out.size());
    return out;
}

// Python's int(): an integer literal in `base` (surrounding whitespace, sign and underscores
// allowed), else nullopt.
std::optional<int64_t> parse_python_int(std::string text, int base) {
    text = python_strip(text, nullptr, true, true);
    bool negative = false;
    if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
        negative = text[0] == '-';
        text.erase(0, 1);
    }
    if (text.size() > 2 && text[0] == '0' && ((base == 16 && (text[1] == 'x' || text[1] == 'X')) || (base == 8 && (text[1] == 'o' || text[1] == 'O')) ||
                                              (base == 2 && (text[1] == 'b' || text[1] == 'B'))))
        text.erase(0, 2);
    if (text.empty() || text.front() == '_' || text.back() == '_') return std::nullopt;
    int64_t value = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '_' && text[i - 1] != '_') continue;
        const int digit = std::isdigit(static_cast<unsigned char>(text[i])) ? text[i] - '0'
                          : std::isalpha(static_cast<unsigned char>(text[i])) ? std::tolower(text[i]) - 'a' + 10 : 99;
        if (digit >= base) return std::nullopt;
        if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, digit, &value))
            runtime_error("integer overflow (values beyond 64 bits are not supported)");
    }
    return negative ? -value : value;
}

std::optional<double> parse_python_float(const std::string& text) {
    const std::string trimmed = python_strip(text, nullptr, true, true);
    if (trimmed.empty() || trimmed.find('_') != std::string::npos) return std::nullopt;
    char* end = nullptr;
    const double value = std::strtod(trimmed.c_str(), &end);
    if (end != trimmed.c_str() + trimmed.size()) return std::nullopt;
    if (trimmed.find_first_of("xXpP") != std::string::npos) return std::nullopt;  // strtod reads hex floats; Python does not
    return value;
}

int64_t float_to_int(double value) {
    if (std::isinf(value)) runtime_error("cannot convert float infinity to integer");
    if (value >= 9.2233720368547758e18 || value < -9.2233720368547758e18) runtime_error("integer overflow (values beyond 64 bits are not supported)");
    return static_cast<int64_t>(value);
}

Value filter_int(Renderer&, const Value& input, CallArgs& args) {
    const Value* fallback = arg(args, 0, "default");
    const Value* base = arg(args, 1, "base");
    const Value fallback_value = fallback ? *fallback : Value(0);
    if (input.is_undefined()) undefined_error(input);
    if (input.is_int()) return input;
    if (input.is_bool()) return int64_t{input.as_bool()};
    if (input.is_float()) {
        if (std::isnan(input.as_float())) return fallback_value;
        return float_to_int(input.as_float());
    }
    if (!input.is_string()) return fallback_value;
    const int number_base = base && base->is_int() ? static_cast<int>(std::clamp<int64_t>(base->as_int(), 2, 36)) : 10;
    if (auto parsed = parse_python_int(input.as_string(), number_base)) return *parsed;
    if (auto parsed = parse_python_float(input.as_string()); parsed && !std::isnan(*parsed)) return float_to_int(*parsed);
    return fallback_value;
}

Value filter_float(Renderer&, const Value& input, CallArgs& args) {
    const Value* fallback = arg(args, 0, "default");
    if (input.is_undefined()) undefined_error(input);
    if (input.is_number()) return input.to_double();
    if (input.is_string()) {
        if (auto parsed = parse_python_float(input.as_string())) return *parsed;
    }
    return fallback ? *fallback : Value(0.0);
}

Value filter_abs(Renderer&, const Value& input, CallArgs&) {
    if (input.is_float()) return std::fabs(input.as_float());
    if (input.is_int()) {
        if (input.as_int() == INT64_MIN) runtime_error("integer overflow (values beyond 64 bits are not supported)");
        return input.as_int() < 0 ? -input.as_int() : input.as_int();
    }
    if (input.is_bool()) return int64_t{input.as_bool()};
    runtime_error(fmt::format("bad operand type for abs(): '{}'", type_name(input)));
}

Value filter_round(Renderer&, const Value& input, CallArgs& args) {
    const Value* precision_arg = arg(args, 0, "precision");
    const Value* method_arg = arg(args, 1, "method");
    const int64_t precision = precision_arg && precision_arg->is_int() ? precision_arg->as_int() : 0;
    const std::string method = method_arg ? python_str(*method_arg) : "common";
    if (method != "common" && method != "ceil" && method != "floor") runtime_error("method must be common, ceil or floor");
    if (!input.is_number()) runtime_error(fmt::format("type {} doesn't define __round__ method", type_name(input)));
    if (method == "common" && !input.is_float()) return input.is_bool() ? Value(int64_t{input.as_bool()}) : input;
    const double value = input.to_double();
    if (method != "common") {
        const double scale = std::pow(10.0, static_cast<double>(precision));
        return (method == "ceil" ? std::ceil(value * scale) : std::floor(value * scale)) / scale;
    }
    if (!std::isfinite(value)) return value;
    if (precision < 0) {
        const double scale = std::pow(10.0, static_cast<double>(-precision));
        return std::nearbyint(value / scale) * scale;
    }
    // Python rounds the exact binary value half to even, as exact decimal formatting does.
    return std::strtod(fmt::format("{:.{}f}", value, std::min<int64_t>(precision, 300)).c_str(), nullptr);
}

std::vector<Value> sorted_items(Renderer& r, std::vector<Value> items, const Value* attribute, bool case_sensitive, bool reverse) {
    std::vector<std::pair<Value, Value>> keyed;
    for (auto& item : items) keyed.emplace_back(sort_key(r, item, attribute, case_sensitive), std::move(item));
    std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
        return reverse ? python_less(b.first, a.first) : python_less(a.first, b.first);
    });
    std::vector<Value> out;
    for (auto& [key, item] : keyed) out.push_back(std::move(item));
    return out;
}

Value filter_sort(Renderer& r, const Value& input, CallArgs& args) {
    return list_of(r, sorted_items(r, r.iterate(input), arg(args, 2, "attribute"), bool_arg(args, 1, "case_sensitive", false),
                                   bool_arg(args, 0, "reverse", false)));
}

Value filter_dictsort(Renderer& r, const Value& input, CallArgs& args) {
    const bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
    const Value* by = arg(args, 1, "by");
    const bool reverse = bool_arg(args, 2, "reverse", false);
    const std::string by_name = by ? python_str(*by) : "key";
    if (by_name != "key" && by_name != "value") runtime_error("You can only sort by either \"key\" or \"value\"");
    const Value pairs = filter_items(r, input, args);
    const Value position(int64_t{by_name == "key" ? 0 : 1});
    std::vector<std::pair<Value, Value>> keyed;
    for (const auto& pair : pairs.as_list().items) {
        Value key = pair.as_list().items[position.as_int()];
        if (!case_sensitive && key.is_string()) key = python_lower(key.as_string());
        keyed.emplace_back(key, pair);
    }
    std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
        return reverse ? python_less(b.first, a.first) : python_less(a.first, b.first);
    });
    std::vector<Value> out;
    for (auto& [key, pair] : keyed) out.push_back(pair);
    return list_of(r, std::move(out));
}

Value filter_unique(Renderer& r, const Value& input, CallArgs& args) {
    const bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
    const Value* attribute = arg(args, 1, "attribute");
    std::vector<Value> seen;
    std::vector<Value> out;
    for (const auto& item : r.iterate(input)) {
        Value key = sort_key(r, item, attribute, case_sensitive);
        if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return python_equal(s, key); })) continue;
        seen.push_back(std::move(key));
        out.push_back(item);
    }
    return list_of(r, std::move(out));
}

Value min_or_max(Renderer& r, const Value& input, CallArgs& args, bool want_max) {
    const auto items = r.iterate(input);
    if (items.empty()) return Undefined{"No aggregated item, sequence was empty."};
    const bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
    const Value* attribute = arg(args, 1, "attribute");
    size_t best = 0;
    Value best_key = sort_key(r, items[0], attribute, case_sensitive);
    for (size_t i = 1; i < items.size(); ++i) {
        Value key = sort_key(r, items[i], attribute, case_sensitive);
        if (want_max ? python_less(best_key, key) : python_less(key, best_key)) {
            best = i;
            best_key = std::move(key);
        }
    }
    return items[best];
}

Value filter_min(Renderer& r, const Value& input, CallArgs& args) { return min_or_max(r, input, args, false); }
Value filter_max(Renderer& r, const Value& input, CallArgs& args) { return min_or_max(r, input, args, true); }

Value filter_sum(Renderer& r, const Value& input, CallArgs& args) {
    const Value* attribute = arg(args, 0, "attribute");
    const Value* start = arg(args, 1, "start");
    Value total = start ? *start : Value(0);
    for (const auto& item : r.iterate(input)) {
        const Value term = attribute && !attribute->is_none() ? lookup_attribute(r, item, python_str(*attribute)) : item;
        total = binary_operator(r, "+", total, term);
    }
    return total;
}

Value filter_map(Renderer& r, const Value& input, CallArgs& args) {
    std::vector<Value> out;
    if (const Value* attribute = args.keyword_arg("attribute")) {
        const Value* fallback = args.keyword_arg("default");
        for (const auto& item : r.iterate(input)) {
            Value value = lookup_attribute(r, item, python_str(*attribute));
            out.push_back(value.is_undefined() && fallback ? *fallback : value);
        }
        return list_of(r, std::move(out));
    }
    if (args.positional.empty()) runtime_error("map requires a filter argument");
    const std::string filter = python_str(args.positional[0]);
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.keyword = args.keyword;
    for (const auto& item : r.iterate(input)) out.push_back(apply_filter(r, filter, item, rest));
    return list_of(r, std::move(out));
}

// select / reject / selectattr / rejectattr: keep the items whose test result is `keep`.
Value select_items(Renderer& r, const Value& input, CallArgs& args, bool by_attribute, bool keep) {
    size_t next = 0;
    std::string attribute;
    if (by_attribute) {
        if (args.positional.empty()) runtime_error("missing parameter for attribute name");
        attribute = python_str(args.positional[next++]);
    }
    std::optional<std::string> test;
    if (next < args.positional.size()) test = python_str(args.positional[next++]);
    CallArgs test_args;
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next), args.positional.end());
    test_args.keyword = args.keyword;
    std::vector<Value> out;
    for (const auto& item : r.iterate(input)) {
        const Value subject = by_attribute ? lookup_attribute(r, item, attribute) : item;
        const bool passed = test ? apply_test(r, *test, subject, test_args) : truthy(subject);
        if (passed == keep) out.push_back(item);
    }
    return list_of(r, std::move(out));
}

Value filter_select(Renderer& r, const Value& input, CallArgs& args) { return select_items(r, input, args, false, true); }
Value filter_reject(Renderer& r, const Value& input, CallArgs& args) { return select_items(r, input, args, false, false); }
Value filter_selectattr(Renderer& r, const Value& input, CallArgs& args) { return select_items(r, input, args, true, true); }
Value filter_rejectattr(Renderer& r, const Value& input, CallArgs& args) { return select_items(r, input, args, true, false); }

Value filter_attr(Renderer& r, const Value& input, CallArgs& args) {
    const Value* name = arg(args, 0, "name");
    if (!name) runtime_error("attr needs a name");
    return r.get_attribute(input, python_str(*name));
}

// jinja2's indent: lines after the first get the prefix; blank lines only with blank=True.
Value filter_indent(Renderer& r, const Value& input, CallArgs& args) {
    const Value* width = arg(args, 0, "width");
    const bool first = bool_arg(args, 1, "first", false);
    const bool blank = bool_arg(args, 2, "blank", false);
    std::string prefix = width && width->is_string() ? width->as_string() : std::string(static_cast<size_t>(std::clamp<int64_t>(width && width->is_int() ? width->as_int() : 4, 0, 1000)), ' ');
    std::vector<std::string> lines;
    const std::string text = python_str(input) + "\n";
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\n' && text[i] != '\r') continue;
        lines.push_back(text.substr(start, i - start));
        if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
        start = i + 1;
    }
    std::string out = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
        out += "\n";
        if (blank || !lines[i].empty()) out += prefix;
        out += lines[i];
        r.check_string_size(out.size());
    }
    return first ? prefix + out : out;
}

Value filter_wordcount(Renderer&, const Value& input, CallArgs&) {
    int64_t count = 0;
    bool in_word = false;
    for (unsigned char c : python_str(input)) {
        const bool word = std::isalnum(c) || c == '_' || c >= 0x80;
        if (word && !in_word) ++count;
        in_word = word;
    }
    return count;
}

const std::map<std::string, FilterFunction, std::less<>>& filter_table() {
    static const std::map<std::string, FilterFunction, std::less<>> table = {
        {"abs", filter_abs},         {"attr", filter_attr},         {"capitalize", filter_capitalize},
        {"count", filter_length},    {"d", filter_default},         {"default", filter_default},
        {"dictsort", filter_dictsort}, {"e", filter_escape},        {"escape", filter_escape},
        {"first", filter_first},     {"float", filter_float},       {"indent", filter_indent},
        {"int", filter_int},         {"items", filter_items},       {"join", filter_join},
        {"last", filter_last},       {"length", filter_length},     {"list", filter_list},
        {"lower", filter_lower},     {"map", filter_map},           {"max", filter_max},
        {"min", filter_min},         {"reject", filter_reject},     {"rejectattr", filter_rejectattr},
        {"replace", filter_replace}, {"reverse", filter_reverse},   {"round", filter_round},
        {"safe", filter_safe},       {"select", filter_select},     {"selectattr", filter_selectattr},
        {"sort", filter_sort},       {"string", filter_string},     {"sum", filter_sum},
        {"title", filter_title},     {"tojson", filter_tojson},     {"trim", filter_trim},
        {"unique", filter_unique},   {"upper", filter_upper},       {"wordcount", filter_wordcount},
    };
    return table;
}

}  // namespace

bool is_known_filter(std::string_view name) { return filter_table().count(name) > 0; }

Value apply_filter(Renderer& renderer, std::string_view name, const Value& input, CallArgs& args) {
    const auto& table = filter_table();
    const auto found = table.find(name);
    if (found == table.end()) runtime_error(fmt::format("no filter named '{}'", name));
    return found->second(renderer, input, args);
}

}  // namespace hearth::chat::jinja
