// Small string helpers shared by modules.
#pragma once

#include <algorithm>
#include <cctype>
#include <string_view>

namespace hearth {

// ASCII case-insensitive equality: type and mix names ("q4_K", "Q4_K_M") are ASCII.
inline bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace hearth
