// The Python methods templates call on strings, dicts and lists (`content.strip()`,
// `message.items()`), bound to their object. Methods that mutate a list or dict raise, as in
// Hugging Face's ImmutableSandboxedEnvironment.
#include <array>
#include <cctype>

#include <fmt/format.h>

#include "chat/renderer.h"

namespace hearth::chat::jinja {
namespace {

constexpr std::array<std::string_view, 6> kUnsafeListMethods = {"append", "reverse", "insert", "sort", "extend", "remove"};
constexpr std::array<std::string_view, 5> kUnsafeDictMethods = {"clear", "pop", "popitem", "setdefault", "update"};

template <size_t N>
bool listed(const std::array<std::string_view, N>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

const std::string& string_argument(const CallArgs& args, size_t index, const char* name, const char* method) {
    const Value* value = args.get(index, name);
    if (!value || !value->is_string()) runtime_error(fmt::format("{}() argument '{}' must be str", method, name));
    return value->as_string();
}

std::string map_ascii(const std::string& text, int (*convert)(int)) {
    std::string out = text;
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(convert(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

// Python's str.title(): a cased letter is upper after an uncased character, lower otherwise.
std::string python_title(const std::string& text) {
    std::string out = text;
    bool previous_cased = false;
    for (char& c : out) {
        const auto byte = static_cast<unsigned char>(c);
        const bool cased = byte < 0x80 && std::isalpha(byte);
        if (cased) c = static_cast<char>(previous_cased ? std::tolower(byte) : std::toupper(byte));
        previous_cased = cased;
    }
    return out;
}

std::string python_capitalize(const std::string& text) {
    std::string out = map_ascii(text, [](int c) { return std::tolower(c); });
    if (!out.empty() && static_cast<unsigned char>(out[0]) < 0x80) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
}

std::string python_upper(const std::string& text) { return map_ascii(text, [](int c) { return std::toupper(c); }); }
std::string python_lower(const std::string& text) { return map_ascii(text, [](int c) { return std::tolower(c); }); }

std::string python_replace(Renderer& renderer, const std::string& text, const std::string& old, const std::string& replacement, int64_t count) {
    std::string out;
    size_t pos = 0;
    int64_t done = 0;
    if (old.empty()) {  // Python inserts the replacement before every character and at the end
        const auto characters = utf8_characters(text);
        for (size_t i = 0; i <= characters.size(); ++i) {
            if (count < 0 || done < count) {
                out += replacement;
                ++done;
            }
            if (i < characters.size()) out += characters[i];
            renderer.check_string_size(out.size());
        }
        return out;
    }
    while (count < 0 || done < count) {
        const size_t found = text.find(old, pos);
        if (found == std::string::npos) break;
        out.append(text, pos, found - pos);
        out += replacement;
        renderer.check_string_size(out.size());
        pos = found + old.size();
        ++done;
    }
    out.append(text, pos, std::string::npos);
    return out;
}

std::vector<std::string> python_split(const std::string& text, const Value* separator, int64_t max_split) {
    std::vector<std::string> parts;
    if (!separator || separator->is_none()) {  // runs of whitespace, no empty parts
        size_t pos = 0;
        auto is_ws = [](char c) { return std::string_view(" \t\n\r\v\f\x1c\x1d\x1e\x1f").find(c) != std::string_view::npos; };
        while (true) {
            while (pos < text.size() && is_ws(text[pos])) ++pos;
            if (pos >= text.size()) break;
            if (max_split >= 0 && static_cast<int64_t>(parts.size()) >= max_split) {
                size_t end = text.size();
                while (end > pos && is_ws(text[end - 1])) --end;
                parts.push_back(text.substr(pos, end - pos));
                break;
            }
            size_t end = pos;
            while (end < text.size() && !is_ws(text[end])) ++end;
            parts.push_back(text.substr(pos, end - pos));
            pos = end;
        }
        return parts;
    }
    if (!separator->is_string()) runtime_error("must be str or None");
    const std::string& sep = separator->as_string();
    if (sep.empty()) runtime_error("empty separator");
    size_t pos = 0;
    while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
        const size_t found = text.find(sep, pos);
        if (found == std::string::npos) break;
        parts.push_back(text.substr(pos, found - pos));
        pos = found + sep.size();
    }
    parts.push_back(text.substr(pos));
    return parts;
}

namespace {

bool affix_matches(const Value& affix, const std::string& text, bool prefix) {
    auto one = [&](const Value& candidate) {
        if (!candidate.is_string()) runtime_error(fmt::format("{} first arg must be str or a tuple of str", prefix ? "startswith" : "endswith"));
        const std::string& s = candidate.as_string();
        if (s.size() > text.size()) return false;
        return prefix ? text.compare(0, s.size(), s) == 0 : text.compare(text.size() - s.size(), s.size(), s) == 0;
    };
    if (affix.is_list() && affix.as_list().is_tuple) {
        for (const auto& candidate : affix.as_list().items)
            if (one(candidate)) return true;
        return false;
    }
    return one(affix);
}

int64_t optional_int(const CallArgs& args, size_t index, const char* name, int64_t fallback) {
    const Value* value = args.get(index, name);
    if (!value || value->is_none()) return fallback;
    if (!value->is_int()) runtime_error(fmt::format("'{}' must be an integer", name));
    return value->as_int();
}

std::optional<std::function<Value(CallArgs&)>> string_method(Renderer& renderer, const std::string& text, const std::string& name) {
    using Method = std::function<Value(CallArgs&)>;
    auto strip = [text](bool left, bool right) { return Method([=](CallArgs& a) -> Value { return python_strip(text, a.get(0, "chars"), left, right); }); };
    if (name == "strip") return strip(true, true);
    if (name == "lstrip") return strip(true, false);
    if (name == "rstrip") return strip(false, true);
    if (name == "upper") return Method([text](CallArgs&) -> Value { return python_upper(text); });
    if (name == "lower") return Method([text](CallArgs&) -> Value { return python_lower(text); });
    if (name == "title") return Method([text](CallArgs&) -> Value { return python_title(text); });
    if (name == "capitalize") return Method([text](CallArgs&) -> Value { return python_capitalize(text); });
    if (name == "startswith" || name == "endswith") {
        const bool prefix = name == "startswith";
        return Method([text, prefix](CallArgs& a) -> Value {
            const Value* affix = a.get(0, "prefix");
            if (!affix) runtime_error("startswith/endswith takes at least 1 argument");
            return affix_matches(*affix, text, prefix);
        });
    }
    if (name == "split") {
        return Method([&renderer, text](CallArgs& a) -> Value {
            List* list = renderer.heap().new_list();
            for (auto& part : python_split(text, a.get(0, "sep"), optional_int(a, 1, "maxsplit", -1))) list->items.emplace_back(std::move(part));
            return list;
        });
    }
    if (name == "replace") {
        return Method([&renderer, text](CallArgs& a) -> Value {
            return python_replace(renderer, text, string_argument(a, 0, "old", "replace"), string_argument(a, 1, "new", "replace"),
                                  optional_int(a, 2, "count", -1));
        });
    }
    if (name == "find" || name == "count") {
        const bool find = name == "find";
        return Method([text, find](CallArgs& a) -> Value {
            const std::string& needle = string_argument(a, 0, "sub", find ? "find" : "count");
            if (find) {
                const size_t at = text.find(needle);
                return at == std::string::npos ? int64_t{-1} : static_cast<int64_t>(utf8_length(std::string_view(text).substr(0, at)));
            }
            if (needle.empty()) return static_cast<int64_t>(utf8_length(text) + 1);
            int64_t count = 0;
            for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
            return count;
        });
    }
    if (name == "join") {
        return Method([&renderer, text](CallArgs& a) -> Value {
            const Value* items = a.get(0, "iterable");
            if (!items) runtime_error("join() takes exactly one argument");
            std::string out;
            bool first = true;
            for (const auto& item : renderer.iterate(*items)) {
                if (!item.is_string()) runtime_error(fmt::format("sequence item: expected str instance, {} found", type_name(item)));
                if (!first) out += text;
                first = false;
                out += item.as_string();
                renderer.check_string_size(out.size());
            }
            return out;
        });
    }
    if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "isupper" || name == "islower") {
        return Method([text, name](CallArgs&) -> Value {
            if (text.empty()) return false;
            bool any_cased = false;
            for (unsigned char c : text) {
                if (name == "isdigit" && !std::isdigit(c)) return false;
                if (name == "isalpha" && !std::isalpha(c)) return false;
                if (name == "isalnum" && !std::isalnum(c)) return false;
                if (name == "isspace" && !std::isspace(c)) return false;
                if (name == "isupper" && std::islower(c)) return false;
                if (name == "islower" && std::isupper(c)) return false;
                any_cased = any_cased || std::isalpha(c);
            }
            return name == "isupper" || name == "islower" ? any_cased : true;
        });
    }
    if (name == "format" || name == "format_map") {
        return Method([](CallArgs&) -> Value { runtime_error("str.format is not supported in chat templates"); });
    }
    return std::nullopt;
}

std::optional<std::function<Value(CallArgs&)>> dict_method(Renderer& renderer, Dict* dict, const std::string& name) {
    using Method = std::function<Value(CallArgs&)>;
    if (name == "items" || name == "keys" || name == "values") {
        return Method([&renderer, dict, name](CallArgs&) -> Value {
            List* list = renderer.heap().new_list();
            for (const auto& [key, value] : dict->items) {
                if (name == "keys") {
                    list->items.push_back(key);
                } else if (name == "values") {
                    list->items.push_back(value);
                } else {
                    List* pair = renderer.heap().new_list(true);
                    pair->items = {key, value};
                    list->items.emplace_back(pair);
                }
            }
            return list;
        });
    }
    if (name == "get") {
        return Method([dict](CallArgs& a) -> Value {
            const Value* key = a.get(0, "key");
            if (!key) runtime_error("get expected at least 1 argument, got 0");
            if (const Value* found = dict->find(*key)) return *found;
            const Value* fallback = a.get(1, "default");
            return fallback ? *fallback : Value(None{});
        });
    }
    if (name == "copy") {
        return Method([&renderer, dict](CallArgs&) -> Value {
            Dict* copy = renderer.heap().new_dict();
            copy->items = dict->items;
            return copy;
        });
    }
    return std::nullopt;
}

// jinja2's sandbox leaves list.pop and list.clear callable (they are not in its mutable spec).
std::optional<std::function<Value(CallArgs&)>> list_method(List* list, const std::string& name) {
    using Method = std::function<Value(CallArgs&)>;
    if (!list->is_tuple && name == "pop") {
        return Method([list](CallArgs& a) -> Value {
            if (list->items.empty()) runtime_error("pop from empty list");
            int64_t index = optional_int(a, 0, "index", -1);
            const auto size = static_cast<int64_t>(list->items.size());
            if (index < 0) index += size;
            if (index < 0 || index >= size) runtime_error("pop index out of range");
            Value item = list->items[static_cast<size_t>(index)];
            list->items.erase(list->items.begin() + index);
            return item;
        });
    }
    if (!list->is_tuple && name == "clear") {
        return Method([list](CallArgs&) -> Value {
            list->items.clear();
            return None{};
        });
    }
    if (name == "index" || name == "count") {
        const bool index = name == "index";
        return Method([list, index](CallArgs& a) -> Value {
            const Value* needle = a.get(0, "value");
            if (!needle) runtime_error(fmt::format("{}() takes exactly one argument", index ? "index" : "count"));
            int64_t count = 0;
            for (size_t i = 0; i < list->items.size(); ++i) {
                if (!python_equal(list->items[i], *needle)) continue;
                if (index) return static_cast<int64_t>(i);
                ++count;
            }
            if (index) runtime_error(fmt::format("{} is not in list", python_repr(*needle)));
            return count;
        });
    }
    return std::nullopt;
}

}  // namespace

std::optional<Value> find_method(Renderer& renderer, const Value& object, const std::string& name) {
    std::optional<std::function<Value(CallArgs&)>> method;
    if (object.is_string()) {
        method = string_method(renderer, object.as_string(), name);
    } else if (object.is_dict() && object.as_dict().flavor == DictFlavor::Plain) {
        if (listed(kUnsafeDictMethods, name))
            runtime_error(fmt::format("access to attribute '{}' of 'dict' object is unsafe.", name));
        method = dict_method(renderer, &object.as_dict(), name);
    } else if (object.is_list()) {
        if (!object.as_list().is_tuple && listed(kUnsafeListMethods, name))
            runtime_error(fmt::format("access to attribute '{}' of 'list' object is unsafe.", name));
        method = list_method(&object.as_list(), name);
    }
    if (!method) return std::nullopt;
    return Value(renderer.heap().new_callable(name, std::move(*method)));
}

}  // namespace hearth::chat::jinja
