// Decode's matrix-vector products alone, on the GPU: each Llama 3.1 8B weight shape and type,
// read from device memory cold (copies rotate so that the 50 MB L2 never holds the next one, as
// in a real step where 4.6 GB pass between two reads of a matrix), timed as CUDA-graph replays.
// Prints microseconds per product, GB/s of weights read and the share of the read-bandwidth
// probe measured in the same run: the number the decode kernels are tuned against. With --mma,
// the int8 tensor-core product for batched decoding instead (matmul_int8_mma; by default Q4_K and
// Q6_K, the layer's shapes, 16 and 64 tokens); with --f16, the f16 tensor-core product that
// replaces it for Q4_K and Q6_K from kMinF16MmaTokens tokens (matmul_f16_mma). With --groups,
// the products a layer launches together (Q, K and V; gate and up), as one launch and as one
// launch each, in the same run.
//   cuda_matvec_bench [--tokens N] [--types Q4_K,Q6_K,...] [--shapes attn_q,ffn_gate,...]
//                     [--mma | --f16] [--groups]
#include <cuda_runtime.h>
#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/kernels.h"
#include "cuda_check.h"
#include "graph_timing.h"
#include "common/error.h"
#include "quant/quant.h"
#include "quant/types.h"

namespace {

using hearth::quant::Type;
namespace cuda = hearth::cuda;

void check(cudaError_t status, const char* what) {
    hearth::bench::exit_on_cuda_error("cuda_matvec_bench", status, what);
}

using cuda::DeviceBuffer;

struct Shape {
    const char* name;
    int64_t rows, cols;
};

// Llama 3.1 8B: the projections of one layer and the output head.
constexpr Shape kShapes[] = {{"attn_q", 4096, 4096},    {"attn_k", 1024, 4096}, {"ffn_gate", 14336, 4096},
                             {"ffn_down", 4096, 14336}, {"output", 128256, 4096}};

// The products of one layer that share their activations, which the backend launches together.
struct Group {
    const char* name;
    std::vector<Shape> shapes;
};
const Group kGroups[] = {
    {"attn_qkv", {{"attn_q", 4096, 4096}, {"attn_k", 1024, 4096}, {"attn_v", 1024, 4096}}},
    {"ffn_gate_up", {{"ffn_gate", 14336, 4096}, {"ffn_up", 14336, 4096}}},
};

std::vector<std::string> split(std::string_view list) {
    std::vector<std::string> items;
    size_t start = 0;
    while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) items.emplace_back(list.substr(start, comma - start));
        start = comma + 1;
    }
    return items;
}

// One matrix in the device layout: 64 distinct quantized random rows, tiled.
std::vector<uint8_t> make_matrix(Type type, const Shape& shape, size_t file_row_bytes, size_t device_stride) {
    constexpr int64_t kDistinctRows = 64;
    std::mt19937 generator(20261126);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> row(shape.cols);
    std::vector<uint8_t> file_rows(kDistinctRows * file_row_bytes);
    for (int64_t r = 0; r < kDistinctRows; ++r) {
        for (float& v : row) v = normal(generator);
        hearth::quant::quantize_row(type, row.data(), file_rows.data() + r * file_row_bytes, shape.cols);
    }
    const auto id = static_cast<uint32_t>(type);
    std::vector<uint8_t> distinct(kDistinctRows * device_stride);
    if (cuda::has_split_layout(id))
        cuda::split_rows(id, file_rows.data(), kDistinctRows, shape.cols, file_row_bytes, distinct.data());
    else
        distinct = file_rows;
    std::vector<uint8_t> matrix(shape.rows * device_stride);
    for (int64_t r = 0; r < shape.rows; ++r)
        std::memcpy(matrix.data() + r * device_stride, distinct.data() + (r % kDistinctRows) * device_stride,
                    device_stride);
    return matrix;
}

struct Timing {
    double microseconds;
    double bytes_per_second;
};

enum class Kernel { Matvec, Mma, MmaF16 };

// Products of matrices with the same row length and the same activations: one launch for all of
// them when `fused`, else one each.
Timing time_products(Type type, std::span<const Shape> group, int tokens, Kernel kernel, bool fused,
                     cudaStream_t stream) {
    const auto id = static_cast<uint32_t>(type);
    const int64_t cols = group[0].cols;
    const size_t file_row_bytes = *hearth::quant::row_bytes(type, cols);
    const size_t stride = cuda::device_row_stride(id, file_row_bytes);
    int64_t rows = 0;
    for (const Shape& shape : group) rows += shape.rows;
    // The group's matrices one after another in each copy.
    const size_t bytes = stride * rows;
    // Enough copies that the ones between two reads of a copy overflow the L2 many times.
    const int copies = static_cast<int>(std::clamp<size_t>((size_t{768} << 20) / bytes + 1, 2, 64));
    DeviceBuffer weights(bytes * copies, "weights");
    size_t offset = 0;
    for (const Shape& shape : group) {
        const std::vector<uint8_t> host = make_matrix(type, shape, file_row_bytes, stride);
        for (int c = 0; c < copies; ++c)
            check(cudaMemcpy(weights.as() + c * bytes + offset, host.data(), host.size(), cudaMemcpyHostToDevice),
                  "uploading weights");
        offset += host.size();
    }
    const Shape shape{group[0].name, rows, cols};

    std::vector<float> x(tokens * shape.cols);
    std::mt19937 generator(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : x) v = normal(generator);
    DeviceBuffer x_device(x.size() * sizeof(float), "activations"), values(x.size(), "activations"),
        scales(x.size() / 32 * 2 * sizeof(float), "activations"), out(tokens * rows * sizeof(float), "outputs");
    check(cudaMemcpy(x_device.as(), x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice), "uploading x");
    cuda::quantize_activations(x_device.as<float>(), tokens, shape.cols, values.as<int8_t>(), scales.as<float>(),
                               stream);
    DeviceBuffer x_f16(x.size() * 2, "activations");
    cuda::convert_to_f16(x_device.as<float>(), static_cast<int64_t>(x.size()), x_f16.as<uint16_t>(), stream);
    const bool int8 = cuda::has_int8_matvec(id);
    const auto multiply = [&](const cuda::MatvecProduct* products, int count) {
        if (kernel == Kernel::MmaF16)
            cuda::matmul_f16_mma(products, count, x_f16.as<uint16_t>(), tokens, false, stream);
        else if (kernel == Kernel::Mma)
            cuda::matmul_int8_mma(products, count, values.as<int8_t>(), scales.as<float>(), tokens, false, stream);
        else if (int8)
            cuda::matvec_int8(products, count, values.as<int8_t>(), scales.as<float>(), tokens, false, stream);
        else
            cuda::matvec_f32(products, count, x_device.as<float>(), tokens, false, stream);
    };
    auto enqueue = [&](int copy) {
        std::vector<cuda::MatvecProduct> products;
        int64_t first_row = 0;
        for (const Shape& matrix : group) {
            const cuda::DeviceMatrix w{id, weights.as() + copy * bytes + first_row * stride, matrix.rows, cols, stride,
                                       cuda::device_scales_offset(id, cols)};
            products.push_back({w, out.as<float>() + tokens * first_row});
            first_row += matrix.rows;
        }
        if (fused) return multiply(products.data(), static_cast<int>(products.size()));
        for (const cuda::MatvecProduct& product : products) multiply(&product, 1);
    };
    const int launches = std::max(copies * 2, 40);
    for (int i = 0; i < copies; ++i) enqueue(i);  // warm-up
    check(cudaStreamSynchronize(stream), "warm-up");

    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
    for (int i = 0; i < launches; ++i) enqueue(i % copies);
    const double us = hearth::bench::median_replay_us(stream, launches, 6, 1);
    if (us < 0) {
        fmt::print(stderr, "cuda_matvec_bench: replaying the products: {}\n", cudaGetErrorString(cudaGetLastError()));
        std::exit(1);
    }
    const double seconds = us * 1e-6;
    return {seconds * 1e6, static_cast<double>(file_row_bytes * shape.rows) / seconds};
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> token_counts;
    std::vector<std::string> types, shapes;
    Kernel kernel = Kernel::Matvec;
    bool groups = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        const bool has_value = i + 1 < argc;
        if (flag == "--mma") {
            kernel = Kernel::Mma;
        } else if (flag == "--f16") {
            kernel = Kernel::MmaF16;
        } else if (flag == "--groups") {
            groups = true;
        } else if (flag == "--tokens" && has_value) {
            token_counts = {std::max(std::atoi(argv[++i]), 1)};
        } else if (flag == "--types" && has_value) {
            types = split(argv[++i]);
        } else if (flag == "--shapes" && has_value) {
            shapes = split(argv[++i]);
        } else {
            fmt::print(stderr,
                       "usage: cuda_matvec_bench [--mma | --f16] [--groups] [--tokens N] [--types Q4_K,...] [--shapes attn_q,...]\n");
            return 2;
        }
    }
    const bool mma = kernel != Kernel::Matvec;
    if (token_counts.empty()) token_counts = mma ? std::vector<int>{16, 64} : std::vector<int>{1};
    if (!mma) token_counts[0] = std::min(token_counts[0], static_cast<int>(cuda::kMaxMatvecTokens));
    if (types.empty())
        types = kernel == Kernel::MmaF16 ? std::vector<std::string>{"Q4_K", "Q6_K"}
                : mma                    ? std::vector<std::string>{"Q4_K", "Q6_K"}
                    : std::vector<std::string>{"Q4_K", "Q6_K", "Q8_0", "F16", "BF16"};
    if (shapes.empty() && mma) shapes = {"attn_q", "attn_k", "ffn_gate", "ffn_down"};
    cudaStream_t stream;
    check(cudaStreamCreate(&stream), "cudaStreamCreate");
    // The backend's own probe, the figure `hearth bench` holds decoding against.
    double probe = 0;
    try {
        probe = cuda::CudaBackend(0).measure_read_bandwidth();
    } catch (const hearth::Error& error) {
        fmt::print(stderr, "cuda_matvec_bench: {}\n", error.what());
        return 1;
    }
    fmt::print("read-bandwidth probe: {:.0f} GB/s; {}\n\n", probe / 1e9,
               kernel == Kernel::MmaF16 ? "matmul_f16_mma (f16 tensor cores, weights dequantized in registers)"
               : mma                    ? "matmul_int8_mma (int8 tensor cores)"
                                        : "matrix-vector kernels");
    if (groups) {
        fmt::print("| type | group | tokens | MB | us, one launch | us, one per matrix | saved |\n"
                   "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
        for (const int tokens : token_counts)
            for (const std::string& name : types) {
                const auto type = hearth::quant::type_from_name(name);
                if (!type) return 2;
                for (const Group& group : kGroups) {
                    const Timing fused = time_products(*type, group.shapes, tokens, kernel, true, stream);
                    const Timing apart = time_products(*type, group.shapes, tokens, kernel, false, stream);
                    const double mb = fused.bytes_per_second * fused.microseconds / 1e12;
                    fmt::print("| {} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} % |\n", name, group.name, tokens,
                               mb, fused.microseconds, apart.microseconds,
                               (1 - fused.microseconds / apart.microseconds) * 100);
                    std::fflush(stdout);
                }
            }
        cudaStreamDestroy(stream);
        return 0;
    }
    fmt::print("| type | shape | rows x cols | tokens | MB | us | GB/s | % of probe |\n"
               "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (const int tokens : token_counts) {
        for (const std::string& name : types) {
            const auto type = hearth::quant::type_from_name(name);
            const auto id = static_cast<uint32_t>(type ? *type : hearth::quant::Type::F32);
            const bool takes = type && (kernel == Kernel::MmaF16 ? cuda::has_f16_mma(id)
                                        : mma                    ? cuda::has_int8_mma(id)
                                                                 : cuda::can_multiply(id));
            if (!takes) {
                fmt::print(stderr, "cuda_matvec_bench: no CUDA {} for type '{}'\n", mma ? "mma" : "matvec", name);
                return 2;
            }
            for (const Shape& shape : kShapes) {
                if (!shapes.empty() && std::find(shapes.begin(), shapes.end(), shape.name) == shapes.end()) continue;
                const Timing t = time_products(*type, {&shape, 1}, tokens, kernel, false, stream);
                const double mb =
                    static_cast<double>(*hearth::quant::row_bytes(*type, shape.cols) * shape.rows) / 1e6;
                fmt::print("| {} | {} | {} x {} | {} | {:.1f} | {:.1f} | {:.0f} | {:.0f} % |\n", name, shape.name,
                           shape.rows, shape.cols, tokens, mb, t.microseconds, t.bytes_per_second / 1e9,
                           t.bytes_per_second / probe * 100);
                std::fflush(stdout);
            }
        }
    }
    cudaStreamDestroy(stream);
    return 0;
}
