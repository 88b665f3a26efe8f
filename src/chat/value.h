// A Jinja value as Python's jinja2 sees it: undefined, None, bool, int, float, str, list (or
// tuple), dict (insertion-ordered; also namespaces and the loop object) and callables (global
// functions, bound methods, macros). Compound values live in a Heap owned by one render, so a
// value is cheap to copy and cycles (a namespace holding itself) cannot leak.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::chat::jinja {

struct List;
struct Dict;
struct Callable;

struct Undefined {
    std::string name;  // the error its use raises: "'x' is undefined", "'dict object' has no attribute 'y'"
};
struct None {};

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Callable };

class Value {
  public:
    using Storage = std::variant<Undefined, None, bool, int64_t, double, std::string, List*, Dict*, Callable*>;

    Value() = default;
    Value(None) : data_(None{}) {}
    Value(Undefined u) : data_(std::move(u)) {}
    Value(bool b) : data_(b) {}
    Value(int64_t i) : data_(i) {}
    Value(int i) : data_(int64_t{i}) {}
    Value(double f) : data_(f) {}
    Value(std::string s) : data_(std::move(s)) {}
    Value(std::string_view s) : data_(std::string(s)) {}
    Value(const char* s) : data_(std::string(s)) {}
    Value(List* l) : data_(l) {}
    Value(Dict* d) : data_(d) {}
    Value(Callable* c) : data_(c) {}

    Kind kind() const { return static_cast<Kind>(data_.index()); }
    bool is_undefined() const { return kind() == Kind::Undefined; }
    bool is_none() const { return kind() == Kind::None; }
    bool is_bool() const { return kind() == Kind::Bool; }
    bool is_int() const { return kind() == Kind::Int; }
    bool is_float() const { return kind() == Kind::Float; }
    bool is_number() const { return is_int() || is_float() || is_bool(); }  // Python: bool is an int
    bool is_string() const { return kind() == Kind::String; }
    bool is_list() const { return kind() == Kind::List; }
    bool is_dict() const { return kind() == Kind::Dict; }
    bool is_callable() const { return kind() == Kind::Callable; }

    bool as_bool() const { return std::get<bool>(data_); }
    int64_t as_int() const { return std::get<int64_t>(data_); }
    double as_float() const { return std::get<double>(data_); }
    const std::string& as_string() const { return std::get<std::string>(data_); }
    List& as_list() const { return *std::get<List*>(data_); }
    Dict& as_dict() const { return *std::get<Dict*>(data_); }
    Callable& as_callable() const { return *std::get<Callable*>(data_); }
    const std::string& undefined_name() const { return std::get<Undefined>(data_).name; }
    // An int, bool or float as a double (for mixed arithmetic).
    double to_double() const;

  private:
    Storage data_;
};

struct List {
    std::vector<Value> items;
    bool is_tuple = false;
};

enum class DictFlavor : uint8_t { Plain, Namespace, Loop };

struct Dict {
    std::vector<std::pair<Value, Value>> items;
    DictFlavor flavor = DictFlavor::Plain;

    const Value* find(const Value& key) const;
    const Value* find(std::string_view key) const;
    void set(const Value& key, Value value);
};

struct CallArgs {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> keyword;

    // Python-style binding: the argument at `index` or named `name`, or nullptr.
    const Value* get(size_t index, std::string_view name) const;
    const Value* keyword_arg(std::string_view name) const;
};

struct Callable {
    std::string name;
    std::function<Value(CallArgs&)> call;
};

// Owns every list, dict and callable of one render, and bounds how many there may be.
class Heap {
  public:
    explicit Heap(size_t max_objects) : max_objects_(max_objects) {}
    List* new_list(bool is_tuple = false);
    Dict* new_dict(DictFlavor flavor = DictFlavor::Plain);
    Callable* new_callable(std::string name, std::function<Value(CallArgs&)> call);
    template <typename T>
    T* keep(std::unique_ptr<T> object) {
        count_object();
        T* raw = object.get();
        extras_.push_back(std::shared_ptr<void>(std::move(object)));
        return raw;
    }

  private:
    void count_object();
    size_t max_objects_;
    size_t object_count_ = 0;
    std::deque<List> lists_;
    std::deque<Dict> dicts_;
    std::deque<Callable> callables_;
    std::vector<std::shared_ptr<void>> extras_;
};

// Raised by the engine with a message but no line; the renderer adds the line.
struct TemplateRuntimeError {
    std::string message;
    bool raised_by_template = false;  // raise_exception(...) in the template
};
[[noreturn]] void runtime_error(std::string message);

// Python semantics.
bool truthy(const Value& value);
std::string python_str(const Value& value);   // str(x), as {{ x }} prints it
std::string python_repr(const Value& value);  // repr(x), as inside a printed list
std::string python_float_repr(double value);
std::string type_name(const Value& value);  // 'str', 'int', 'dict', ... as Python names them
bool python_equal(const Value& a, const Value& b);
// a < b as Python orders numbers, strings and lists; other mixes raise TypeError.
bool python_less(const Value& a, const Value& b);
// Number of code points in UTF-8 text (Python's len(str)).
size_t utf8_length(std::string_view text);
// The code points of UTF-8 text, each as its own string.
std::vector<std::string> utf8_characters(std::string_view text);

// JSON in and out. to_json raises for values JSON cannot hold (undefined, callables).
Value from_json(const nlohmann::ordered_json& json, Heap& heap);

// Python's json.dumps(x, ensure_ascii, indent, separators, sort_keys) byte for byte.
struct JsonDumpOptions {
    bool ensure_ascii = false;
    std::optional<std::string> indent;  // nullopt: one line
    std::string item_separator = ", ";
    std::string key_separator = ": ";
    bool sort_keys = false;
};
std::string python_json_dumps(const Value& value, const JsonDumpOptions& options);

}  // namespace hearth::chat::jinja
