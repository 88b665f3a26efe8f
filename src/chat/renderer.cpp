#include "chat/renderer.h"

#include <chrono>

#include <fmt/format.h>

namespace hearth::chat::jinja {

const Value* Frame::find(std::string_view name) const {
    for (const Frame* frame = this; frame; frame = frame->parent) {
        for (const auto& [key, value] : frame->variables)
            if (key == name) return &value;
    }
    return nullptr;
}

void Frame::set(const std::string& name, Value value) {
    for (auto& [key, existing] : variables) {
        if (key == name) {
            existing = std::move(value);
            return;
        }
    }
    variables.emplace_back(name, std::move(value));
}

Renderer::DepthGuard::DepthGuard(Renderer& r) : renderer(r) {
    if (++renderer.depth_ > renderer.settings_.max_depth)
        runtime_error(fmt::format("the template nests or recurses deeper than {} levels", renderer.settings_.max_depth));
}

Renderer::Renderer(const RenderSettings& settings) : settings_(settings), heap_(settings.max_objects) {}

void Renderer::check_string_size(size_t bytes) const {
    if (bytes > settings_.max_output_bytes)
        runtime_error(fmt::format("the template builds a string longer than {} bytes", settings_.max_output_bytes));
}

void Renderer::check_list_size(size_t items) const {
    if (items > static_cast<size_t>(settings_.max_loop_iterations))
        runtime_error(fmt::format("the template builds a list longer than {} items", settings_.max_loop_iterations));
}

void Renderer::count_loop_iterations(int64_t count) {
    loop_iterations_ += count;
    if (loop_iterations_ > settings_.max_loop_iterations)
        runtime_error(fmt::format("the template runs more than {} loop iterations", settings_.max_loop_iterations));
}

Frame* Renderer::new_frame(Frame* parent) {
    Frame* frame = heap_.keep(std::make_unique<Frame>());
    frame->parent = parent;
    return frame;
}

std::string Renderer::render(const Template& tmpl, const nlohmann::ordered_json& context) {
    Frame* globals = new_frame(nullptr);
    install_globals(globals);
    Frame* top = new_frame(globals);
    if (context.is_object()) {
        for (const auto& [key, value] : context.items()) top->set(key, from_json(value, heap_));
    }
    std::string out;
    exec_body(tmpl.body, top, out);
    return out;
}

void Renderer::append_output(std::string& out, std::string_view text) const {
    check_string_size(out.size() + text.size());
    out += text;
}

Renderer::Flow Renderer::exec_body(const Body& body, Frame* frame, std::string& out) {
    for (const auto& stmt : body) {
        const Flow flow = exec(*stmt, frame, out);
        if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
}

Renderer::Flow Renderer::exec(const Stmt& stmt, Frame* frame, std::string& out) {
    DepthGuard guard(*this);
    line_ = stmt.line;
    switch (stmt.kind) {
        case StmtKind::Text: append_output(out, stmt.text); break;
        case StmtKind::Print: append_output(out, python_str(eval(*stmt.expr, frame))); break;
        case StmtKind::If: return exec_if(stmt, frame, out);
        case StmtKind::For: return exec_for(stmt, frame, out);
        case StmtKind::Set: exec_set(stmt, frame); break;
        case StmtKind::SetBlock: {
            std::string captured;
            exec_body(stmt.bodies[0], frame, captured);
            Value value = std::move(captured);
            if (stmt.expr) value = eval_filter(*stmt.expr, frame, &value);
            assign(stmt.target, std::move(value), frame);
            break;
        }
        case StmtKind::Macro: frame->set(stmt.text, make_macro(stmt, frame, stmt.text)); break;
        case StmtKind::CallBlock: {
            const Value caller = make_macro(stmt, frame, "caller");
            append_output(out, python_str(eval_call(*stmt.expr, frame, &caller)));
            break;
        }
        case StmtKind::FilterBlock: {
            std::string captured;
            exec_body(stmt.bodies[0], frame, captured);
            const Value input = std::move(captured);
            append_output(out, python_str(eval_filter(*stmt.expr, frame, &input)));
            break;
        }
        case StmtKind::With: {
            Frame* inner = new_frame(frame);
            for (const auto& [name, expr] : stmt.assignments) inner->set(name, eval(*expr, frame));
            return exec_body(stmt.bodies[0], inner, out);
        }
        case StmtKind::Break: return Flow::Break;
        case StmtKind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
}

Renderer::Flow Renderer::exec_if(const Stmt& stmt, Frame* frame, std::string& out) {
    for (size_t branch = 0; branch < stmt.conditions.size(); ++branch) {
        if (truthy(eval(*stmt.conditions[branch], frame))) return exec_body(stmt.bodies[branch], frame, out);
    }
    if (stmt.bodies.size() > stmt.conditions.size()) return exec_body(stmt.bodies.back(), frame, out);
    return Flow::Normal;
}

// jinja2 gives every iteration a fresh scope: a `set` inside the loop is gone at the next
// iteration and after the loop (namespaces are how templates carry state across).
Renderer::Flow Renderer::exec_for(const Stmt& stmt, Frame* frame, std::string& out) {
    std::vector<Value> items = iterate(eval(*stmt.expr, frame));
    if (stmt.condition) {
        std::vector<Value> kept;
        for (auto& item : items) {
            count_loop_iterations(1);
            Frame* scope = new_frame(frame);
            assign(stmt.target, item, scope);
            if (truthy(eval(*stmt.condition, scope))) kept.push_back(std::move(item));
        }
        items = std::move(kept);
    }
    if (items.empty()) return stmt.bodies.size() > 1 ? exec_body(stmt.bodies[1], frame, out) : Flow::Normal;
    const auto length = static_cast<int64_t>(items.size());
    Dict* loop = heap_.new_dict(DictFlavor::Loop);
    Callable* cycle = heap_.new_callable("cycle", [loop](CallArgs& args) -> Value {
        if (args.positional.empty()) runtime_error("no items for cycling given");
        const int64_t index0 = loop->find(std::string_view("index0"))->as_int();
        return args.positional[static_cast<size_t>(index0) % args.positional.size()];
    });
    for (int64_t i = 0; i < length; ++i) {
        count_loop_iterations(1);
        loop->items.clear();
        const std::pair<const char*, Value> fields[] = {
            {"index0", i},           {"index", i + 1},        {"revindex0", length - i - 1},
            {"revindex", length - i}, {"first", i == 0},      {"last", i == length - 1},
            {"length", length},      {"depth", 1},            {"depth0", 0},
            {"previtem", i > 0 ? items[i - 1] : Value(Undefined{"'previtem' is undefined"})},
            {"nextitem", i + 1 < length ? items[i + 1] : Value(Undefined{"'nextitem' is undefined"})},
            {"cycle", cycle}};
        for (const auto& [name, value] : fields) loop->items.emplace_back(Value(name), value);
        Frame* scope = new_frame(frame);
        assign(stmt.target, items[i], scope);
        scope->set("loop", loop);
        if (exec_body(stmt.bodies[0], scope, out) == Flow::Break) break;
    }
    return Flow::Normal;
}

void Renderer::exec_set(const Stmt& stmt, Frame* frame) {
    Value value = eval(*stmt.expr, frame);
    if (stmt.target.attribute.empty()) return assign(stmt.target, std::move(value), frame);
    const Value* object = frame->find(stmt.target.names[0]);
    if (!object || !object->is_dict() || object->as_dict().flavor != DictFlavor::Namespace)
        runtime_error("can't assign attribute on non-namespace object");
    object->as_dict().set(Value(stmt.target.attribute), std::move(value));
}

void Renderer::assign(const Target& target, Value value, Frame* frame) {
    if (target.names.size() == 1) return frame->set(target.names[0], std::move(value));
    std::vector<Value> parts = value.is_list() ? value.as_list().items : iterate(value);
    if (parts.size() != target.names.size()) {
        runtime_error(parts.size() > target.names.size()
                          ? fmt::format("too many values to unpack (expected {})", target.names.size())
                          : fmt::format("not enough values to unpack (expected {}, got {})", target.names.size(), parts.size()));
    }
    for (size_t i = 0; i < parts.size(); ++i) frame->set(target.names[i], parts[i]);
}

Value Renderer::make_macro(const Stmt& stmt, Frame* frame, const std::string& name) {
    return heap_.new_callable(name, [this, &stmt, frame](CallArgs& args) { return call_macro(stmt, frame, args); });
}

Value Renderer::call_macro(const Stmt& stmt, Frame* defining_frame, CallArgs& args) {
    DepthGuard guard(*this);
    const int call_line = line_;
    const std::string name = stmt.kind == StmtKind::Macro ? stmt.text : "caller";
    if (args.positional.size() > stmt.parameters.size())
        runtime_error(fmt::format("macro '{}' takes not more than {} argument(s)", name, stmt.parameters.size()));
    Frame* scope = new_frame(defining_frame);
    for (const auto& argument : args.keyword) {
        const std::string& keyword = argument.first;
        const Value& value = argument.second;
        const bool known = keyword == "caller" || std::any_of(stmt.parameters.begin(), stmt.parameters.end(),
                                                              [&](const Parameter& p) { return p.name == keyword; });
        if (!known) runtime_error(fmt::format("macro '{}' takes no keyword argument '{}'", name, keyword));
        if (keyword == "caller") scope->set("caller", value);
    }
    for (size_t i = 0; i < stmt.parameters.size(); ++i) {
        const Parameter& parameter = stmt.parameters[i];
        if (const Value* given = args.get(i, parameter.name)) {
            scope->set(parameter.name, *given);
        } else if (parameter.default_value) {
            scope->set(parameter.name, eval(*parameter.default_value, scope));
        } else {
            scope->set(parameter.name, Undefined{fmt::format("parameter '{}' was not provided", parameter.name)});
        }
    }
    std::string out;
    exec_body(stmt.bodies[0], scope, out);
    line_ = call_line;
    return out;
}

void Renderer::install_globals(Frame* frame) {
    frame->set("raise_exception", heap_.new_callable("raise_exception", [](CallArgs& args) -> Value {
        const Value* message = args.get(0, "message");
        throw TemplateRuntimeError{message ? python_str(*message) : "", true};
    }));
    frame->set("strftime_now", heap_.new_callable("strftime_now", [this](CallArgs& args) -> Value {
        const Value* format = args.get(0, "format");
        if (!format || !format->is_string()) runtime_error("strftime_now() takes a format string");
        std::tm time{};
        if (settings_.now) {
            time = *settings_.now;
        } else {
            const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
            localtime_r(&now, &time);
        }
        std::string buffer(256 + format->as_string().size() * 16, '\0');
        const size_t length = std::strftime(buffer.data(), buffer.size(), format->as_string().c_str(), &time);
        buffer.resize(length);
        return buffer;
    }));
    frame->set("namespace", heap_.new_callable("namespace", [this](CallArgs& args) -> Value {
        Dict* ns = heap_.new_dict(DictFlavor::Namespace);
        for (const auto& initial : args.positional) {
            if (!initial.is_dict()) runtime_error("namespace() takes a mapping as positional argument");
            for (const auto& [key, value] : initial.as_dict().items) ns->set(key, value);
        }
        for (const auto& [key, value] : args.keyword) ns->set(Value(key), value);
        return ns;
    }));
    frame->set("dict", heap_.new_callable("dict", [this](CallArgs& args) -> Value {
        Dict* dict = heap_.new_dict();
        for (const auto& initial : args.positional) {
            if (!initial.is_dict()) runtime_error("dict() takes a mapping as positional argument");
            for (const auto& [key, value] : initial.as_dict().items) dict->set(key, value);
        }
        for (const auto& [key, value] : args.keyword) dict->set(Value(key), value);
        return dict;
    }));
    frame->set("range", heap_.new_callable("range", [this](CallArgs& args) -> Value {
        std::vector<int64_t> bounds;
        for (const auto& arg : args.positional) {
            if (!arg.is_int() && !arg.is_bool()) runtime_error(fmt::format("'{}' object cannot be interpreted as an integer", type_name(arg)));
            bounds.push_back(arg.is_bool() ? arg.as_bool() : arg.as_int());
        }
        if (bounds.empty() || bounds.size() > 3 || !args.keyword.empty()) runtime_error("range expected 1 to 3 integer arguments");
        const int64_t start = bounds.size() == 1 ? 0 : bounds[0];
        const int64_t stop = bounds.size() == 1 ? bounds[0] : bounds[1];
        const int64_t step = bounds.size() == 3 ? bounds[2] : 1;
        if (step == 0) runtime_error("range() arg 3 must not be zero");
        List* list = heap_.new_list();
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            check_list_size(list->items.size() + 1);
            list->items.emplace_back(i);
            if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
        }
        return list;
    }));
}

}  // namespace hearth::chat::jinja
