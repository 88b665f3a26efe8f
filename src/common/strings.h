// Small string helpers shared by modules.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace hearth {

// ASCII case-insensitive equality: type and mix names ("q4_K", "Q4_K_M") are ASCII.
inline bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// A size for people, in decimal units as Ollama prints them: "4.92 GB", "771.0 MB", "12.0 KB",
// "512 B". GB is the largest unit, so a memory estimate reads the same at any size.
inline std::string format_bytes(double bytes) {
    if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
    if (bytes >= 1e6) return fmt::format("{:.1f} MB", bytes / 1e6);
    if (bytes >= 1e3) return fmt::format("{:.1f} KB", bytes / 1e3);
    return fmt::format("{:.0f} B", bytes);
}

}  // namespace hearth
