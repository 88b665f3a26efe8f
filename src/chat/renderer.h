// Executes a parsed template: statements, expressions and the calls into filters, tests and
// methods. Everything a template can make grows under bounds (depth, loop iterations, output
// and string size, object count) so that any input ends in output or an error.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/ast.h"
#include "chat/value.h"

namespace hearth::chat::jinja {

struct RenderSettings {
    size_t max_output_bytes = 16u << 20;  // also the largest string a template may build
    int max_depth = 200;                  // nested statements, expressions and macro calls
    int64_t max_loop_iterations = 1'000'000;  // summed over all loops of one render
    size_t max_objects = 1'000'000;           // lists, dicts, functions and scopes
    std::optional<std::tm> now;               // strftime_now's clock; nullopt: local time
};

// The variables of one scope, chained to the scope it was opened in.
struct Frame {
    Frame* parent = nullptr;
    std::vector<std::pair<std::string, Value>> variables;

    const Value* find(std::string_view name) const;
    void set(const std::string& name, Value value);
};

class Renderer {
  public:
    explicit Renderer(const RenderSettings& settings);

    // Renders with the context's top-level keys as variables. Throws TemplateRuntimeError;
    // failing_line() then names the template line.
    std::string render(const Template& tmpl, const nlohmann::ordered_json& context);
    int failing_line() const { return line_; }

    Heap& heap() { return heap_; }
    const RenderSettings& settings() const { return settings_; }
    // Raises when a string the template builds would pass the output bound.
    void check_string_size(size_t bytes) const;
    void check_list_size(size_t items) const;
    void count_loop_iterations(int64_t count);

    Value call(const Value& callee, CallArgs& args);
    Value get_attribute(const Value& object, const std::string& name);
    Value get_item(const Value& object, const Value& key);
    // The items `for` walks: a list's items, a dict's keys, a string's characters.
    std::vector<Value> iterate(const Value& value);

  private:
    enum class Flow { Normal, Break, Continue };
    struct DepthGuard {
        explicit DepthGuard(Renderer& r);
        ~DepthGuard() { --renderer.depth_; }
        Renderer& renderer;
    };

    Frame* new_frame(Frame* parent);
    Flow exec_body(const Body& body, Frame* frame, std::string& out);
    Flow exec(const Stmt& stmt, Frame* frame, std::string& out);
    void append_output(std::string& out, std::string_view text) const;
    Flow exec_if(const Stmt& stmt, Frame* frame, std::string& out);
    Flow exec_for(const Stmt& stmt, Frame* frame, std::string& out);
    void exec_set(const Stmt& stmt, Frame* frame);
    void assign(const Target& target, Value value, Frame* frame);
    Value make_macro(const Stmt& stmt, Frame* frame, const std::string& name);
    Value call_macro(const Stmt& stmt, Frame* defining_frame, CallArgs& args);
    void install_globals(Frame* frame);

    // Expressions (expressions.cpp).
    Value eval(const Expr& expr, Frame* frame);
    Value eval_name(const Expr& expr, Frame* frame);
    Value eval_call(const Expr& expr, Frame* frame, const Value* caller);
    CallArgs eval_arguments(const Expr& expr, size_t first_operand, Frame* frame);
    Value eval_filter(const Expr& expr, Frame* frame, const Value* block_input);
    Value eval_compare(const Expr& expr, Frame* frame);
    Value eval_slice(const Expr& expr, Frame* frame);
    Value eval_literal_container(const Expr& expr, Frame* frame);

    RenderSettings settings_;
    Heap heap_;
    int depth_ = 0;
    int line_ = 0;
    int64_t loop_iterations_ = 0;
};

// filters.cpp, predicates.cpp, methods.cpp: the built-ins, as jinja2 and Python define them.
Value apply_filter(Renderer& renderer, std::string_view name, const Value& input, CallArgs& args);
bool apply_test(Renderer& renderer, std::string_view name, const Value& input, CallArgs& args);
// A bound method of a str, dict or list (`text.strip`, `message.items`), or nullopt.
std::optional<Value> find_method(Renderer& renderer, const Value& object, const std::string& name);
[[noreturn]] void undefined_error(const Value& undefined);

// Python operators on values (operators.cpp).
Value binary_operator(Renderer& renderer, std::string_view op, const Value& left, const Value& right);
bool contains(const Value& container, const Value& item);
std::string python_strip(std::string_view text, const Value* chars, bool left, bool right);

// Python str methods (methods.cpp); case mapping covers ASCII letters only.
std::string python_title(const std::string& text);
std::string python_capitalize(const std::string& text);
std::string python_upper(const std::string& text);
std::string python_lower(const std::string& text);
std::string python_replace(Renderer& renderer, const std::string& text, const std::string& old, const std::string& replacement, int64_t count);
std::vector<std::string> python_split(const std::string& text, const Value* separator, int64_t max_split);

}  // namespace hearth::chat::jinja
