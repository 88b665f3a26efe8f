// Expression evaluation: names, attribute and item access, calls, filters, tests, operators.
#include <fmt/format.h>

#include "chat/renderer.h"

namespace hearth::chat::jinja {
namespace {

// Python's slice.indices(): clamps start and stop for a sequence of `length` items.
struct SliceBounds {
    int64_t start, stop, step;
};

int64_t slice_part(const Value& value, const char* what) {
    if (value.is_int()) return value.as_int();
    if (value.is_bool()) return value.as_bool();
    runtime_error(fmt::format("slice {} must be an integer or None", what));
}

SliceBounds slice_bounds(int64_t length, const Value& start, const Value& stop, const Value& step) {
    SliceBounds b{0, 0, 1};
    if (!step.is_none()) b.step = slice_part(step, "step");
    if (b.step == 0) runtime_error("slice step cannot be zero");
    auto clamp = [&](const Value& v, int64_t missing) {
        if (v.is_none()) return missing;
        int64_t index = slice_part(v, "index");
        if (index < 0) index = std::max(index + length, b.step < 0 ? int64_t{-1} : int64_t{0});
        else if (index >= length) index = b.step < 0 ? length - 1 : length;
        return index;
    };
    b.start = clamp(start, b.step < 0 ? length - 1 : 0);
    b.stop = clamp(stop, b.step < 0 ? -1 : length);
    return b;
}

template <typename T>
std::vector<T> take_slice(const std::vector<T>& items, const SliceBounds& b) {
    std::vector<T> out;
    for (int64_t i = b.start; b.step > 0 ? i < b.stop : i > b.stop; i += b.step) {
        out.push_back(items[static_cast<size_t>(i)]);
        if ((b.step > 0 && i > INT64_MAX - b.step) || (b.step < 0 && i < INT64_MIN - b.step)) break;
    }
    return out;
}

}  // namespace

Value Renderer::eval(const Expr& expr, Frame* frame) {
    DepthGuard guard(*this);
    line_ = expr.line;
    switch (expr.kind) {
        case ExprKind::Literal: return expr.literal;
        case ExprKind::Name: return eval_name(expr, frame);
        case ExprKind::GetAttr: return get_attribute(eval(*expr.operands[0], frame), expr.name);
        case ExprKind::GetItem: {
            const Value object = eval(*expr.operands[0], frame);
            return get_item(object, eval(*expr.operands[1], frame));
        }
        case ExprKind::Slice: return eval_slice(expr, frame);
        case ExprKind::Call: return eval_call(expr, frame, nullptr);
        case ExprKind::Filter: return eval_filter(expr, frame, nullptr);
        case ExprKind::Test: {
            const Value input = eval(*expr.operands[0], frame);
            CallArgs args = eval_arguments(expr, 1, frame);
            line_ = expr.line;
            return apply_test(*this, expr.name, input, args);
        }
        case ExprKind::Not: return !truthy(eval(*expr.operands[0], frame));
        case ExprKind::Negate:
        case ExprKind::Plus: {
            const Value operand = eval(*expr.operands[0], frame);
            if (operand.is_undefined()) undefined_error(operand);
            if (!operand.is_number()) runtime_error(fmt::format("bad operand type for unary {}: '{}'", expr.kind == ExprKind::Negate ? '-' : '+', type_name(operand)));
            if (expr.kind == ExprKind::Plus) return operand.is_bool() ? Value(int64_t{operand.as_bool()}) : operand;
            return binary_operator(*this, "-", Value(0), operand);
        }
        case ExprKind::Binary: {
            const Value left = eval(*expr.operands[0], frame);
            const Value right = eval(*expr.operands[1], frame);
            line_ = expr.line;
            return binary_operator(*this, expr.name, left, right);
        }
        case ExprKind::And: {
            Value left = eval(*expr.operands[0], frame);
            return truthy(left) ? eval(*expr.operands[1], frame) : left;
        }
        case ExprKind::Or: {
            Value left = eval(*expr.operands[0], frame);
            return truthy(left) ? left : eval(*expr.operands[1], frame);
        }
        case ExprKind::Compare: return eval_compare(expr, frame);
        case ExprKind::Conditional:
            if (truthy(eval(*expr.operands[0], frame))) return eval(*expr.operands[1], frame);
            if (expr.operands[2]) return eval(*expr.operands[2], frame);
            return Undefined{"the inline if expression evaluated to false and no else section was defined"};
        case ExprKind::ListLiteral:
        case ExprKind::TupleLiteral:
        case ExprKind::DictLiteral: return eval_literal_container(expr, frame);
    }
    return Value();
}

Value Renderer::eval_name(const Expr& expr, Frame* frame) {
    if (const Value* value = frame->find(expr.name)) return *value;
    return Undefined{fmt::format("'{}' is undefined", expr.name)};
}

CallArgs Renderer::eval_arguments(const Expr& expr, size_t first_operand, Frame* frame) {
    CallArgs args;
    for (size_t i = first_operand; i < expr.operands.size(); ++i) args.positional.push_back(eval(*expr.operands[i], frame));
    for (const auto& [name, value] : expr.keywords) args.keyword.emplace_back(name, eval(*value, frame));
    return args;
}

Value Renderer::eval_call(const Expr& expr, Frame* frame, const Value* caller) {
    const Value callee = eval(*expr.operands[0], frame);
    CallArgs args = eval_arguments(expr, 1, frame);
    if (caller) args.keyword.emplace_back("caller", *caller);
    line_ = expr.line;
    return call(callee, args);
}

Value Renderer::call(const Value& callee, CallArgs& args) {
    if (callee.is_undefined()) undefined_error(callee);
    if (!callee.is_callable()) runtime_error(fmt::format("'{}' object is not callable", type_name(callee)));
    return callee.as_callable().call(args);
}

// A filter's input is its first operand, or in a filter block / block set the captured text.
Value Renderer::eval_filter(const Expr& expr, Frame* frame, const Value* block_input) {
    Value input;
    if (expr.operands[0]) {
        const Expr& inner = *expr.operands[0];
        input = inner.kind == ExprKind::Filter ? eval_filter(inner, frame, block_input) : eval(inner, frame);
    } else if (block_input) {
        input = *block_input;
    }
    CallArgs args = eval_arguments(expr, 1, frame);
    line_ = expr.line;
    return apply_filter(*this, expr.name, input, args);
}

Value Renderer::eval_compare(const Expr& expr, Frame* frame) {
    Value left = eval(*expr.operands[0], frame);
    for (size_t i = 0; i < expr.compare_ops.size(); ++i) {
        Value right = eval(*expr.operands[i + 1], frame);
        line_ = expr.line;
        const std::string& op = expr.compare_ops[i];
        bool result = false;
        if (op == "==") result = python_equal(left, right);
        else if (op == "!=") result = !python_equal(left, right);
        else if (op == "in") result = contains(right, left);
        else if (op == "notin") result = !contains(right, left);
        else {
            if (left.is_undefined()) undefined_error(left);
            if (right.is_undefined()) undefined_error(right);
            if (op == "<") result = python_less(left, right);
            else if (op == ">") result = python_less(right, left);
            else if (op == "<=") result = !python_less(right, left);
            else result = !python_less(left, right);
        }
        if (!result) return false;
        left = std::move(right);
    }
    return true;
}

Value Renderer::eval_slice(const Expr& expr, Frame* frame) {
    const Value object = eval(*expr.operands[0], frame);
    Value parts[3];
    for (int i = 0; i < 3; ++i) parts[i] = expr.operands[i + 1] ? eval(*expr.operands[i + 1], frame) : Value(None{});
    line_ = expr.line;
    if (object.is_undefined()) undefined_error(object);
    if (object.is_string()) {
        const auto characters = utf8_characters(object.as_string());
        const auto bounds = slice_bounds(static_cast<int64_t>(characters.size()), parts[0], parts[1], parts[2]);
        std::string out;
        for (const auto& c : take_slice(characters, bounds)) out += c;
        return out;
    }
    if (object.is_list()) {
        const auto& items = object.as_list().items;
        const auto bounds = slice_bounds(static_cast<int64_t>(items.size()), parts[0], parts[1], parts[2]);
        List* list = heap_.new_list(object.as_list().is_tuple);
        list->items = take_slice(items, bounds);
        return list;
    }
    return Undefined{fmt::format("'{}' object is not subscriptable", type_name(object))};
}

Value Renderer::eval_literal_container(const Expr& expr, Frame* frame) {
    if (expr.kind == ExprKind::DictLiteral) {
        Dict* dict = heap_.new_dict();
        for (size_t i = 0; i + 1 < expr.operands.size(); i += 2) {
            Value key = eval(*expr.operands[i], frame);
            if (key.is_list() && !key.as_list().is_tuple) runtime_error("unhashable type: 'list'");
            if (key.is_dict()) runtime_error("unhashable type: 'dict'");
            dict->set(key, eval(*expr.operands[i + 1], frame));
        }
        return dict;
    }
    List* list = heap_.new_list(expr.kind == ExprKind::TupleLiteral);
    for (const auto& operand : expr.operands) list->items.push_back(eval(*operand, frame));
    return list;
}

// jinja2's getattr: an attribute (a method) first, then an item.
Value Renderer::get_attribute(const Value& object, const std::string& name) {
    if (object.is_undefined()) undefined_error(object);
    if (object.is_dict() && object.as_dict().flavor != DictFlavor::Plain) {
        if (const Value* value = object.as_dict().find(std::string_view(name))) return *value;
        return Undefined{fmt::format("'{}' has no attribute '{}'", python_repr(object), name)};
    }
    if (auto method = find_method(*this, object, name)) return *method;
    if (object.is_dict()) {
        if (const Value* value = object.as_dict().find(std::string_view(name))) return *value;
    }
    const std::string described = object.is_none() ? "'None'" : fmt::format("'{} object'", type_name(object));
    return Undefined{fmt::format("{} has no attribute '{}'", described, name)};
}

// jinja2's getitem: an item first, then (for a string key) an attribute.
Value Renderer::get_item(const Value& object, const Value& key) {
    if (object.is_undefined()) undefined_error(object);
    if (object.is_dict() && object.as_dict().flavor == DictFlavor::Plain) {
        if (const Value* value = object.as_dict().find(key)) return *value;
    } else if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
        int64_t index = key.is_bool() ? key.as_bool() : key.as_int();
        if (object.is_list()) {
            const auto size = static_cast<int64_t>(object.as_list().items.size());
            if (index < 0) index += size;
            if (index >= 0 && index < size) return object.as_list().items[static_cast<size_t>(index)];
        } else {
            const auto characters = utf8_characters(object.as_string());
            const auto size = static_cast<int64_t>(characters.size());
            if (index < 0) index += size;
            if (index >= 0 && index < size) return characters[static_cast<size_t>(index)];
        }
    }
    if (key.is_string()) return get_attribute(object, key.as_string());
    const std::string described = object.is_none() ? "'None'" : fmt::format("'{} object'", type_name(object));
    return Undefined{fmt::format("{} has no element {}", described, python_repr(key))};
}

std::vector<Value> Renderer::iterate(const Value& value) {
    switch (value.kind()) {
        case Kind::Undefined: return {};
        case Kind::String: {
            std::vector<Value> out;
            for (auto& c : utf8_characters(value.as_string())) out.emplace_back(std::move(c));
            return out;
        }
        case Kind::List: return value.as_list().items;
        case Kind::Dict:
            if (value.as_dict().flavor == DictFlavor::Plain) {
                std::vector<Value> keys;
                for (const auto& [key, item] : value.as_dict().items) keys.push_back(key);
                return keys;
            }
            break;
        default: break;
    }
    runtime_error(fmt::format("'{}' object is not iterable", type_name(value)));
}

void undefined_error(const Value& undefined) { runtime_error(undefined.undefined_name()); }

}  // namespace hearth::chat::jinja
