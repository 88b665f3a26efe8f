// Decode attention alone (cuda::attention, flash-decoding over a paged f16 or q8_0 cache), for
// Llama 3.1 8B's heads (32 query heads on 8 kv heads of 128 dims): one row a sequence, `streams`
// sequences at `depth` positions each, their 64-position blocks handed out interleaved (as
// sequences that grow together get them from the pool). Several layers' caches rotate so that L2
// does not hold the next one, as in a real step; timed as CUDA-graph replays. Prints microseconds
// a call and the cache bytes it reads per microsecond against the read-bandwidth probe: a batched
// step reads as many cache bytes as at a few thousand positions of depth it reads weights.
//   cuda_attention_bench [--kv f16|q8_0] [--case STREAMS,DEPTH]
#include <cuda_runtime.h>
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/kernels.h"
#include "cuda_check.h"
#include "graph_timing.h"

namespace {

namespace cuda = hearth::cuda;
using cuda::DeviceBuffer;

void check(cudaError_t status, const char* what) {
    hearth::bench::exit_on_cuda_error("cuda_attention_bench", status, what);
}

constexpr int64_t kHeads = 32, kKvHeads = 8, kHeadDim = 128;
constexpr int kLayers = 4;  // caches that rotate
constexpr int kCallsPerGraph = 32;

template <typename T>
void upload(DeviceBuffer& buffer, const std::vector<T>& values) {
    check(cudaMemcpy(buffer.as(), values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
}

struct Case {
    int64_t streams, depth;
};

// Microseconds a call, the median of 9 replays.
double time_case(const Case& c, uint32_t kv_type, cudaStream_t stream) {
    const int64_t blocks_per_sequence = (c.depth + cuda::kKvBlockPositions - 1) / cuda::kKvBlockPositions;
    const int64_t pool_blocks = blocks_per_sequence * c.streams;
    const int64_t capacity = pool_blocks * cuda::kKvBlockPositions;
    const size_t row_bytes = kv_type == hearth::cuda::type_id::F16 ? kHeadDim * 2 : kHeadDim / 32 * 34;
    const size_t head_stride = static_cast<size_t>(capacity) * row_bytes;
    const size_t cache_bytes = head_stride * kKvHeads;
    std::vector<DeviceBuffer> caches;
    std::mt19937 generator(20261127);
    std::vector<uint8_t> bytes(cache_bytes);
    // Small values (f16 halves and q8_0 blocks alike stay finite): every byte in [0x00, 0x3b].
    for (auto& b : bytes) b = static_cast<uint8_t>(generator() % 0x3c);
    for (int l = 0; l < 2 * kLayers; ++l) {
        caches.emplace_back(cache_bytes, "cache");
        upload(caches.back(), bytes);
    }
    // Block j of sequence s is pool block j * streams + s: the sequences grew together.
    std::vector<int32_t> tables(pool_blocks), sequence_of(c.streams), positions(c.streams);
    for (int64_t s = 0; s < c.streams; ++s) {
        for (int64_t j = 0; j < blocks_per_sequence; ++j)
            tables[s * blocks_per_sequence + j] = static_cast<int32_t>(j * c.streams + s);
        sequence_of[s] = static_cast<int32_t>(s);
        positions[s] = static_cast<int32_t>(c.depth - 1);
    }
    DeviceBuffer tables_device(tables.size() * 4, "tables"), sequences_device(sequence_of.size() * 4, "sequences"),
        positions_device(positions.size() * 4, "positions");
    upload(tables_device, tables);
    upload(sequences_device, sequence_of);
    upload(positions_device, positions);
    std::vector<float> q(c.streams * kHeads * kHeadDim);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& v : q) v = normal(generator);
    DeviceBuffer q_device(q.size() * 4, "queries"), out(q.size() * 4, "outputs");
    upload(q_device, q);
    DeviceBuffer scratch(cuda::attention_scratch_floats(c.streams, kHeads, kHeadDim, capacity) * 4, "scratch");
    const cuda::KvPages pages{tables_device.as<int32_t>(), sequences_device.as<int32_t>(), blocks_per_sequence};

    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
    for (int i = 0; i < kCallsPerGraph; ++i) {
        const int layer = i % kLayers;
        const cuda::KvRows keys{caches[2 * layer].as(), head_stride, row_bytes, kv_type};
        const cuda::KvRows values{caches[2 * layer + 1].as(), head_stride, row_bytes, kv_type};
        cuda::attention(keys, values, q_device.as<float>(), c.streams, kHeads, kKvHeads, kHeadDim,
                        positions_device.as<int32_t>(), pages, capacity, 1.0f / 11.3f, scratch.as<float>(),
                        out.as<float>(), cuda::ActivationCopies{}, stream);
    }
    const double us = hearth::bench::median_replay_us(stream, kCallsPerGraph);
    if (us < 0) {
        fmt::print(stderr, "cuda_attention_bench: replaying the attention calls: {}\n",
                   cudaGetErrorString(cudaGetLastError()));
        std::exit(1);
    }
    std::vector<float> result(q.size());
    check(cudaMemcpy(result.data(), out.as(), result.size() * 4, cudaMemcpyDeviceToHost), "outputs");
    for (const float v : result)
        if (!std::isfinite(v)) {
            fmt::print(stderr, "cuda_attention_bench: a non-finite output\n");
            std::exit(1);
        }
    return us;
}

}  // namespace

int main(int argc, char** argv) {
    uint32_t kv_type = cuda::type_id::F16;
    std::vector<Case> cases = {{1, 4096}, {1, 32768}, {4, 1024}, {16, 192}, {16, 1024}, {64, 192}, {64, 1024}};
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (flag == "--kv" && i + 1 < argc) {
            const std::string_view type = argv[++i];
            if (type == "q8_0") kv_type = cuda::type_id::Q8_0;
            else if (type != "f16") {
                fmt::print(stderr, "cuda_attention_bench: --kv f16 or q8_0\n");
                return 2;
            }
        } else if (flag == "--case" && i + 1 < argc) {
            Case c{};
            if (std::sscanf(argv[++i], "%ld,%ld", &c.streams, &c.depth) != 2 || c.streams < 1 || c.depth < 1) {
                fmt::print(stderr, "cuda_attention_bench: --case STREAMS,DEPTH\n");
                return 2;
            }
            cases = {c};
        } else {
            fmt::print(stderr, "usage: cuda_attention_bench [--kv f16|q8_0] [--case STREAMS,DEPTH]\n");
            return 2;
        }
    }
    double probe = 0;
    try {
        probe = cuda::CudaBackend(0).measure_read_bandwidth();
    } catch (const std::exception& e) {
        fmt::print(stderr, "cuda_attention_bench: {}\n", e.what());
        return 1;
    }
    cudaStream_t stream;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    fmt::print("decode attention, 32 heads on 8 kv heads of 128 dims, {} cache, paged; read probe {:.0f} GB/s\n\n",
               kv_type == cuda::type_id::F16 ? "f16" : "q8_0", probe / 1e9);
    fmt::print("| streams | depth | cache MB read | us a call | GB/s | % of probe |\n");
    fmt::print("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (const Case& c : cases) {
        const size_t row_bytes = kv_type == cuda::type_id::F16 ? kHeadDim * 2 : kHeadDim / 32 * 34;
        const double bytes = 2.0 * static_cast<double>(c.streams * c.depth * kKvHeads) * static_cast<double>(row_bytes);
        const double us = time_case(c, kv_type, stream);
        const double gbs = bytes / us / 1e3;
        fmt::print("| {} | {} | {:.1f} | {:.1f} | {:.0f} | {:.0f} % |\n", c.streams, c.depth, bytes / 1e6, us, gbs,
                   100.0 * gbs * 1e9 / probe);
    }
    cudaStreamDestroy(stream);
    return 0;
}
