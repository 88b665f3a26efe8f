// Reads llama.cpp's reference results for every tensor type from the shared fixtures folder
// (see its README.md): the manifest, the f32 input, and each type's quantized bytes and
// dequantized floats.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace hearth::quant::testing {

inline std::string fixtures_dir() {
    return std::string(HEARTH_SHARED_FIXTURES) + "/quant";
}

struct ManifestRow {
    std::string type;  // "Q4_K"
    uint32_t ggml_id;
    int64_t block_elems;
    int64_t block_bytes;
    int64_t rows;
    int64_t n_per_row;
    int64_t quant_bytes;
};

// Names a parameterized test's case by its type instead of a hex dump.
inline void PrintTo(const ManifestRow& row, std::ostream* out) {
    *out << row.type;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw std::runtime_error(path + ": cannot open");
    return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

inline std::vector<float> read_floats(const std::string& path) {
    const std::vector<uint8_t> bytes = read_bytes(path);
    if (bytes.size() % sizeof(float) != 0) throw std::runtime_error(path + ": not a whole number of f32");
    std::vector<float> floats(bytes.size() / sizeof(float));
    std::memcpy(floats.data(), bytes.data(), bytes.size());
    return floats;
}

inline std::vector<ManifestRow> read_manifest() {
    const std::string path = fixtures_dir() + "/manifest.tsv";
    std::ifstream file(path);
    if (!file) throw std::runtime_error(path + ": cannot open");
    std::vector<ManifestRow> rows;
    std::string line;
    std::getline(file, line);  // header
    while (std::getline(file, line)) {
        if (line.empty()) continue;
        std::istringstream fields(line);
        ManifestRow row;
        fields >> row.type >> row.ggml_id >> row.block_elems >> row.block_bytes >> row.rows >>
            row.n_per_row >> row.quant_bytes;
        if (!fields) throw std::runtime_error(path + ": bad line '" + line + "'");
        rows.push_back(row);
    }
    return rows;
}

}  // namespace hearth::quant::testing
