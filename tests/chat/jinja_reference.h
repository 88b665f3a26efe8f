// Runs tests/chat/jinja_reference.py (Debian's python3-jinja2, configured as Hugging Face
// configures it) over a batch of templates and returns its results, for byte-for-byte
// comparison with hearth's engine.
#pragma once

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "common/run_command.h"

namespace hearth::chat::testing {

inline std::filesystem::path chat_test_data(const std::string& relative) {
    return std::filesystem::path(HEARTH_SOURCE_DIR) / "tests/chat/data" / relative;
}

inline std::string read_text_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// `requests`: [{"template": str, "variables": {...}}]; returns [{"output"} | {"error", "raised"}].
inline nlohmann::ordered_json run_jinja_reference(const nlohmann::ordered_json& requests) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("hearth-jinja-requests-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()) + ".json");
    std::ofstream(path, std::ios::binary) << requests.dump();
    const std::string command =
        "/usr/bin/python3 " HEARTH_SOURCE_DIR "/tests/chat/jinja_reference.py '" + path.string() + "'";
    const hearth::testing::CommandResult result = hearth::testing::run_command(command);
    std::filesystem::remove(path);
    if (result.exit_code != 0) {
        throw std::runtime_error("jinja_reference.py failed (exit code " + std::to_string(result.exit_code) + ")");
    }
    const std::string& output = result.output;
    return nlohmann::ordered_json::parse(output);
}

// The clock jinja_reference.py pins strftime_now to: 2024-07-26 09:30:05 (a Friday).
inline std::tm reference_now() {
    std::tm time{};
    time.tm_year = 2024 - 1900;
    time.tm_mon = 6;
    time.tm_mday = 26;
    time.tm_hour = 9;
    time.tm_min = 30;
    time.tm_sec = 5;
    const std::time_t seconds = ::timegm(&time);  // fills in weekday and day of the year
    ::gmtime_r(&seconds, &time);
    return time;
}

}  // namespace hearth::chat::testing
