// The --kv-type flag every verb that loads a model shares: f16 or q8_0.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "quant/quant.h"

namespace hearth::cli {

inline quant::Type parse_kv_type(const std::string& name, std::string_view verb) {
    const auto type = quant::type_from_name(name);
    if (!type || (*type != quant::Type::F16 && *type != quant::Type::Q8_0))
        fail("{}: --kv-type {}: the KV cache is f16 or q8_0", verb, name);
    return *type;
}

}  // namespace hearth::cli
