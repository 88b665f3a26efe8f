#include "chat/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace hearth::chat::jinja {
namespace {

// Values nest only as deep as a template builds them; a namespace can hold itself, so every
// recursive walk stops here instead of overflowing the stack.
constexpr int kMaxNesting = 200;

void check_nesting(int depth) {
    if (depth > kMaxNesting) runtime_error(fmt::format("value nested deeper than {} levels", kMaxNesting));
}

// Decodes one UTF-8 sequence at `pos` (invalid bytes decode as themselves, one at a time).
uint32_t decode_utf8(std::string_view text, size_t& pos) {
    const auto byte = static_cast<unsigned char>(text[pos]);
    size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xE ? 3 : (byte >> 3) == 0x1E ? 4 : 1;
    if (pos + length > text.size()) length = 1;
    uint32_t code = length == 1 ? byte : byte & (0x7F >> length);
    for (size_t i = 1; i < length; ++i) code = (code << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
    pos += length;
    return code;
}

// Python's str.isprintable() is false for these (control, format and separator characters);
// repr() escapes them. The list covers the characters that occur in practice.
bool python_printable(uint32_t code) {
    if (code < 0x20 || (code >= 0x7F && code <= 0xA0) || code == 0xAD) return false;
    if ((code >= 0x2000 && code <= 0x200F) || (code >= 0x2028 && code <= 0x202F)) return false;
    if ((code >= 0x205F && code <= 0x206F) || code == 0x3000 || code == 0xFEFF) return false;
    return code < 0xD800 || code > 0xDFFF;
}

std::string repr_string(const std::string& text) {
    const bool has_single = text.find('\'') != std::string::npos;
    const bool has_double = text.find('"') != std::string::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    std::string out(1, quote);
    for (size_t pos = 0; pos < text.size();) {
        const size_t start = pos;
        const uint32_t code = decode_utf8(text, pos);
        if (code == '\\' || code == static_cast<uint32_t>(quote)) {
            out += '\\';
            out += static_cast<char>(code);
        } else if (code == '\n') {
            out += "\\n";
        } else if (code == '\r') {
            out += "\\r";
        } else if (code == '\t') {
            out += "\\t";
        } else if (python_printable(code)) {
            out.append(text, start, pos - start);
        } else if (code < 0x100) {
            out += fmt::format("\\x{:02x}", code);
        } else {
            out += fmt::format("\\u{:04x}", code);
        }
    }
    out += quote;
    return out;
}

std::string repr_at(const Value& value, int depth);

std::string repr_dict_items(const Dict& dict, int depth) {
    std::string out = "{";
    for (size_t i = 0; i < dict.items.size(); ++i) {
        if (i) out += ", ";
        out += repr_at(dict.items[i].first, depth + 1) + ": " + repr_at(dict.items[i].second, depth + 1);
    }
    return out + "}";
}

std::string repr_at(const Value& value, int depth) {
    check_nesting(depth);
    switch (value.kind()) {
        case Kind::Undefined: return "Undefined";
        case Kind::String: return repr_string(value.as_string());
        case Kind::List: {
            const List& list = value.as_list();
            std::string out = list.is_tuple ? "(" : "[";
            for (size_t i = 0; i < list.items.size(); ++i) {
                if (i) out += ", ";
                out += repr_at(list.items[i], depth + 1);
            }
            if (list.is_tuple && list.items.size() == 1) out += ",";
            return out + (list.is_tuple ? ")" : "]");
        }
        case Kind::Dict: {
            const Dict& dict = value.as_dict();
            if (dict.flavor == DictFlavor::Namespace) return "<Namespace " + repr_dict_items(dict, depth) + ">";
            if (dict.flavor == DictFlavor::Loop) return "<LoopContext>";
            return repr_dict_items(dict, depth);
        }
        default: return python_str(value);
    }
}

bool equal_at(const Value& a, const Value& b, int depth) {
    check_nesting(depth);
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
        return (a.is_bool() ? a.as_bool() : a.as_int()) == (b.is_bool() ? b.as_bool() : b.as_int());
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Kind::Undefined:
        case Kind::None: return true;
        case Kind::String: return a.as_string() == b.as_string();
        case Kind::Callable: return &a.as_callable() == &b.as_callable();
        case Kind::List: {
            const List& x = a.as_list();
            const List& y = b.as_list();
            if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
            for (size_t i = 0; i < x.items.size(); ++i)
                if (!equal_at(x.items[i], y.items[i], depth + 1)) return false;
            return true;
        }
        case Kind::Dict: {
            const Dict& x = a.as_dict();
            const Dict& y = b.as_dict();
            if (x.flavor != DictFlavor::Plain || y.flavor != DictFlavor::Plain) return &x == &y;
            if (x.items.size() != y.items.size()) return false;
            for (const auto& [key, item] : x.items) {
                const Value* other = y.find(key);
                if (!other || !equal_at(item, *other, depth + 1)) return false;
            }
            return true;
        }
        default: return false;
    }
}

bool less_at(const Value& a, const Value& b, int depth) {
    check_nesting(depth);
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.to_double() < b.to_double();
        return (a.is_bool() ? a.as_bool() : a.as_int()) < (b.is_bool() ? b.as_bool() : b.as_int());
    }
    if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 order is code point order
    if (a.is_list() && b.is_list() && a.as_list().is_tuple == b.as_list().is_tuple) {
        const auto& x = a.as_list().items;
        const auto& y = b.as_list().items;
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (!equal_at(x[i], y[i], depth + 1)) return less_at(x[i], y[i], depth + 1);
        }
        return x.size() < y.size();
    }
    runtime_error(fmt::format("'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b)));
}

void append_json_string(std::string& out, const std::string& text, bool ensure_ascii) {
    out += '"';
    for (size_t pos = 0; pos < text.size();) {
        const size_t start = pos;
        const uint32_t code = decode_utf8(text, pos);
        switch (code) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (code < 0x20) {
                    out += fmt::format("\\u{:04x}", code);
                } else if (code < 0x7F || !ensure_ascii) {
                    out.append(text, start, pos - start);
                } else if (code < 0x10000) {
                    out += fmt::format("\\u{:04x}", code);
                } else {
                    const uint32_t v = code - 0x10000;
                    out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                }
        }
    }
    out += '"';
}

std::string json_float(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
    return python_float_repr(value);
}

std::string json_key(const Value& key) {
    switch (key.kind()) {
        case Kind::String: return key.as_string();
        case Kind::Bool: return key.as_bool() ? "true" : "false";
        case Kind::None: return "null";
        case Kind::Int: return std::to_string(key.as_int());
        case Kind::Float: return json_float(key.as_float());
        default: runtime_error(fmt::format("keys must be str, int, float, bool or None, not {}", type_name(key)));
    }
}

class JsonDumper {
  public:
    explicit JsonDumper(const JsonDumpOptions& options) : options_(options) {}

    void dump(const Value& value, int depth) {
        check_nesting(depth);
        switch (value.kind()) {
            case Kind::None: out += "null"; return;
            case Kind::Bool: out += value.as_bool() ? "true" : "false"; return;
            case Kind::Int: out += std::to_string(value.as_int()); return;
            case Kind::Float: out += json_float(value.as_float()); return;
            case Kind::String: append_json_string(out, value.as_string(), options_.ensure_ascii); return;
            case Kind::List: dump_list(value.as_list(), depth); return;
            case Kind::Dict:
                if (value.as_dict().flavor == DictFlavor::Plain) {
                    dump_dict(value.as_dict(), depth);
                    return;
                }
                break;
            default: break;
        }
        const std::string type = value.is_dict() ? "Namespace" : value.is_undefined() ? "Undefined" : type_name(value);
        runtime_error(fmt::format("Object of type {} is not JSON serializable", type));
    }

    std::string out;

  private:
    void newline(int depth) {
        if (!options_.indent) return;
        out += '\n';
        for (int i = 0; i < depth; ++i) out += *options_.indent;
    }

    void dump_list(const List& list, int depth) {
        if (list.items.empty()) {
            out += "[]";
            return;
        }
        out += '[';
        for (size_t i = 0; i < list.items.size(); ++i) {
            if (i) out += options_.item_separator;
            newline(depth + 1);
            dump(list.items[i], depth + 1);
        }
        newline(depth);
        out += ']';
    }

    void dump_dict(const Dict& dict, int depth) {
        if (dict.items.empty()) {
            out += "{}";
            return;
        }
        std::vector<std::pair<std::string, const Value*>> items;
        for (const auto& [key, item] : dict.items) items.emplace_back(json_key(key), &item);
        if (options_.sort_keys) std::stable_sort(items.begin(), items.end(), [](auto& a, auto& b) { return a.first < b.first; });
        out += '{';
        for (size_t i = 0; i < items.size(); ++i) {
            if (i) out += options_.item_separator;
            newline(depth + 1);
            append_json_string(out, items[i].first, options_.ensure_ascii);
            out += options_.key_separator;
            dump(*items[i].second, depth + 1);
        }
        newline(depth);
        out += '}';
    }

    const JsonDumpOptions& options_;
};

}  // namespace

double Value::to_double() const {
    if (is_float()) return as_float();
    if (is_int()) return static_cast<double>(as_int());
    return as_bool() ? 1.0 : 0.0;
}

const Value* Dict::find(const Value& key) const {
    for (const auto& [k, v] : items)
        if (python_equal(k, key)) return &v;
    return nullptr;
}

const Value* Dict::find(std::string_view key) const {
    for (const auto& [k, v] : items)
        if (k.is_string() && k.as_string() == key) return &v;
    return nullptr;
}

void Dict::set(const Value& key, Value value) {
    for (auto& [k, v] : items) {
        if (python_equal(k, key)) {
            v = std::move(value);
            return;
        }
    }
    items.emplace_back(key, std::move(value));
}

const Value* CallArgs::keyword_arg(std::string_view name) const {
    for (const auto& [key, value] : keyword)
        if (key == name) return &value;
    return nullptr;
}

const Value* CallArgs::get(size_t index, std::string_view name) const {
    if (index < positional.size()) return &positional[index];
    return keyword_arg(name);
}

void Heap::count_object() {
    if (++object_count_ > max_objects_) runtime_error(fmt::format("the template made more than {} lists, dicts and functions", max_objects_));
}

List* Heap::new_list(bool is_tuple) {
    count_object();
    List& list = lists_.emplace_back();
    list.is_tuple = is_tuple;
    return &list;
}

Dict* Heap::new_dict(DictFlavor flavor) {
    count_object();
    Dict& dict = dicts_.emplace_back();
    dict.flavor = flavor;
    return &dict;
}

Callable* Heap::new_callable(std::string name, std::function<Value(CallArgs&)> call) {
    count_object();
    return &callables_.emplace_back(Callable{std::move(name), std::move(call)});
}

void runtime_error(std::string message) { throw TemplateRuntimeError{std::move(message), false}; }

bool truthy(const Value& value) {
    switch (value.kind()) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool: return value.as_bool();
        case Kind::Int: return value.as_int() != 0;
        case Kind::Float: return value.as_float() != 0.0;
        case Kind::String: return !value.as_string().empty();
        case Kind::List: return !value.as_list().items.empty();
        case Kind::Dict: return value.as_dict().flavor != DictFlavor::Plain || !value.as_dict().items.empty();
        case Kind::Callable: return true;
    }
    return false;
}

std::string python_float_repr(double value) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
    const std::string scientific(buffer, result.ptr);  // shortest round trip: "-1.2345e+02"
    const size_t e = scientific.find('e');
    const bool negative = scientific[0] == '-';
    std::string digits;
    for (size_t i = negative ? 1 : 0; i < e; ++i)
        if (scientific[i] != '.') digits += scientific[i];
    const int exponent = std::stoi(scientific.substr(e + 1));
    std::string out = negative ? "-" : "";
    if (exponent >= -4 && exponent < 16) {  // Python's repr switches to exponent form outside this range
        if (exponent < 0) {
            out += "0." + std::string(-exponent - 1, '0') + digits;
        } else if (static_cast<int>(digits.size()) <= exponent + 1) {
            out += digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
        } else {
            out += digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
        }
        return out;
    }
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    return out + fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
}

std::string python_str(const Value& value) {
    switch (value.kind()) {
        case Kind::Undefined: return "";
        case Kind::None: return "None";
        case Kind::Bool: return value.as_bool() ? "True" : "False";
        case Kind::Int: return std::to_string(value.as_int());
        case Kind::Float: return python_float_repr(value.as_float());
        case Kind::String: return value.as_string();
        case Kind::Callable: return "<function " + value.as_callable().name + ">";
        default: return repr_at(value, 0);
    }
}

std::string python_repr(const Value& value) { return repr_at(value, 0); }

std::string type_name(const Value& value) {
    switch (value.kind()) {
        case Kind::Undefined: return "Undefined";
        case Kind::None: return "NoneType";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return "str";
        case Kind::List: return value.as_list().is_tuple ? "tuple" : "list";
        case Kind::Dict: return value.as_dict().flavor == DictFlavor::Plain ? "dict" : "Namespace";
        case Kind::Callable: return "function";
    }
    return "object";
}

bool python_equal(const Value& a, const Value& b) { return equal_at(a, b, 0); }
bool python_less(const Value& a, const Value& b) { return less_at(a, b, 0); }

size_t utf8_length(std::string_view text) {
    size_t count = 0;
    for (size_t pos = 0; pos < text.size(); ++count) decode_utf8(text, pos);
    return count;
}

std::vector<std::string> utf8_characters(std::string_view text) {
    std::vector<std::string> out;
    for (size_t pos = 0; pos < text.size();) {
        const size_t start = pos;
        decode_utf8(text, pos);
        out.emplace_back(text.substr(start, pos - start));
    }
    return out;
}

namespace {
Value from_json_at(const nlohmann::ordered_json& json, Heap& heap, int depth);
}

Value from_json(const nlohmann::ordered_json& json, Heap& heap) { return from_json_at(json, heap, 0); }

namespace {
Value from_json_at(const nlohmann::ordered_json& json, Heap& heap, int depth) {
    check_nesting(depth);
    switch (json.type()) {
        case nlohmann::json::value_t::null: return None{};
        case nlohmann::json::value_t::boolean: return json.get<bool>();
        case nlohmann::json::value_t::number_integer: return json.get<int64_t>();
        case nlohmann::json::value_t::number_unsigned: {
            const auto number = json.get<uint64_t>();
            if (number > static_cast<uint64_t>(INT64_MAX)) return static_cast<double>(number);
            return static_cast<int64_t>(number);
        }
        case nlohmann::json::value_t::number_float: return json.get<double>();
        case nlohmann::json::value_t::string: return json.get<std::string>();
        case nlohmann::json::value_t::array: {
            List* list = heap.new_list();
            for (const auto& item : json) list->items.push_back(from_json_at(item, heap, depth + 1));
            return list;
        }
        case nlohmann::json::value_t::object: {
            Dict* dict = heap.new_dict();
            for (const auto& [key, item] : json.items()) dict->items.emplace_back(Value(key), from_json_at(item, heap, depth + 1));
            return dict;
        }
        default: runtime_error("binary JSON values are not supported");
    }
}
}  // namespace

std::string python_json_dumps(const Value& value, const JsonDumpOptions& options) {
    JsonDumper dumper(options);
    dumper.dump(value, 0);
    return std::move(dumper.out);
}

}  // namespace hearth::chat::jinja
