// The syntax tree of a Jinja template. One node type for expressions and one for statements,
// each tagged by kind: the evaluator switches on the kind; fields unused by a kind stay empty.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chat/value.h"

namespace hearth::chat::jinja {

enum class ExprKind {
    Literal,    // literal
    Name,       // name
    GetAttr,    // operands[0].name
    GetItem,    // operands[0][operands[1]]
    Slice,      // operands[0][operands[1]:operands[2]:operands[3]] (absent parts are null)
    Call,       // operands[0](operands[1..], keywords)
    Filter,     // operands[0] | name(operands[1..], keywords); operands[0] null in a filter block
    Test,       // operands[0] is name(operands[1..], keywords)
    Not,        // not operands[0]
    Negate,     // -operands[0]
    Plus,       // +operands[0]
    Binary,     // operands[0] op operands[1]: + - * / // % ** ~
    And,        // operands[0] and operands[1]
    Or,         // operands[0] or operands[1]
    Compare,    // operands[0] ops[0] operands[1] ops[1] operands[2] ... (== != < <= > >= in notin)
    Conditional,  // operands[1] if operands[0] else operands[2] (else may be null)
    ListLiteral,
    TupleLiteral,
    DictLiteral,  // operands: key, value, key, value, ...
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    ExprKind kind;
    int line = 0;
    std::string name;  // Name / GetAttr / Filter / Test / Binary operator
    Value literal;     // Literal (scalars only)
    std::vector<ExprPtr> operands;
    std::vector<std::pair<std::string, ExprPtr>> keywords;
    std::vector<std::string> compare_ops;
};

enum class StmtKind { Text, Print, If, For, Set, SetBlock, Macro, CallBlock, FilterBlock, With, Break, Continue };

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// A name a statement binds: `x`, `ns.attr`, or a tuple of names.
struct Target {
    std::vector<std::string> names;  // one or more (unpacking)
    std::string attribute;           // set ns.attribute = ...: names[0] is the namespace
};

struct Parameter {
    std::string name;
    ExprPtr default_value;  // may be null
};

struct Stmt {
    StmtKind kind;
    int line = 0;
    std::string text;                   // Text; Macro name
    ExprPtr expr;                       // Print, For iterable, Set value, CallBlock call, FilterBlock filter
    ExprPtr condition;                  // For ... if condition
    std::vector<ExprPtr> conditions;    // If: one per branch (else branch has none)
    std::vector<Body> bodies;           // If: one per branch (+ else); For: body (+ else); others: [0]
    Target target;                      // For, Set, SetBlock
    std::vector<Parameter> parameters;  // Macro, CallBlock (caller's)
    std::vector<std::pair<std::string, ExprPtr>> assignments;  // With
};

struct Template {
    Body body;
};

// The built-in filter and test names (filters.cpp, predicates.cpp): jinja2 rejects an
// unknown one when it compiles the template, and so does the parser.
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

// Parses a template; throws TemplateSyntaxError naming the problem and its line.
std::unique_ptr<Template> parse(std::string_view source);

}  // namespace hearth::chat::jinja
