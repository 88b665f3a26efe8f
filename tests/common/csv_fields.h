// How many fields a CSV line has (RFC 4180: commas inside double quotes do not separate): the
// tests of every CSV writer compare it with the header's.
#pragma once

#include <string_view>

namespace hearth::testing {

inline int csv_field_count(std::string_view line) {
    int fields = 1;
    bool quoted = false;
    for (const char c : line) {
        if (c == '"') quoted = !quoted;
        if (c == ',' && !quoted) ++fields;
    }
    return fields;
}

}  // namespace hearth::testing
