// The one exception type hearth throws on bad input or failed I/O. It carries a message
// that names the thing and the problem; the CLI prints it, the server maps it to JSON.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace hearth {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace hearth
