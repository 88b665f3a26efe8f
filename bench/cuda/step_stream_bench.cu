// How close can a single-stream decode step come to the memory's speed, by the way its work is
// launched? A step of Llama 3.1 8B Q4_K_M reads ~4.5 GB of weights in ~160 dependent pieces (each
// layer's Q+K+V, its attention, O, gate+up and down, then the output matrix), and each piece needs
// the one before it finished. The backend launches each as its own kernel (11 launches a layer);
// the sixth pass measured ~3 us a launch beyond its bytes, the gap between 56 % and the target.
//
// This bench reads exactly a step's weight bytes, in a step's pieces and order, three ways, and does
// no arithmetic beyond summing what it reads (so it bounds what each way can reach):
//   launches    one kernel a piece, blocks of 128 threads reading 9 KB each (a matrix-vector
//               kernel's four rows), small launches for the ops without weights; a CUDA graph.
//   persistent  one kernel of a few blocks a SM for the whole step; warps take chunks of a piece
//               with an atomic counter, count them done with another, and wait for a piece's count
//               before the next piece (loads straight into registers).
//   pipelined   the same, but one warp a block copies chunks into a ring of shared-memory stages
//               with the bulk copy engine (cp.async.bulk, completing on an mbarrier) and runs ahead
//               of the others: while they wait for a piece to finish, the next piece's weights are
//               already on their way. Chunks are claimed with an atomic or dealt in turn; and either
//               every piece waits for the one before, or only those a norm or attention precedes
//               (the bound of a step whose O and down products start on each part of their input
//               as it is made).
// With --multiply, every matrix is Q4_K, chunks hold whole rows, and the pipelined readers also
// multiply each row by int8 activations in shared memory (the backend's arithmetic; the output
// matrix's first rows checked against the CPU's reference decoding): what a decode step as one
// persistent kernel could reach with its arithmetic. A last row lets no piece wait at all: the
// readers' own throughput, a diagnostic and not a step.
// And the probe: one kernel reading the same bytes as one piece. Every way's time is the median of
// graph replays; the table gives each as GB/s and as a share of the probe. What it found (H100,
// docs/performance.md, eighth and ninth passes): launches reach 78.5 % of the probe at Q4_K_M (87 %
// without the small launches), the pipelined ring 81 % (90 % with waits after norms only), the
// register-fed persistent kernel under 52 %; multiplying, the ring reaches 63 % at best (12
// readers, waits after norms only), its readers alone 87 %.
//   cuda_step_stream_bench [--f16 | --multiply] [--layers N] [--depth N] [--chunk KB] [--stages N]
//                          [--readers N] [--blocks-per-sm N] [--claim N] [--ahead N]
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/block_decode.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/warp.cuh"
#include "cuda_check.h"
#include "graph_timing.h"
#include "q4k_reference.h"

namespace {

namespace cuda = hearth::cuda;

void check(cudaError_t status, const char* what) {
    hearth::bench::exit_on_cuda_error("cuda_step_stream_bench", status, what);
}

constexpr int kWarp = 32;
constexpr int kLaunchThreads = 128;
constexpr int64_t kLaunchBlockBytes = 4 * 2304;  // four rows of a 4096-column Q4_K matrix
constexpr int64_t kKvPartBytes = 8192;

// A piece of the step: `bytes` of weights read from `offset` (none for attention, which reads
// `kv_bytes` of keys and values in `kv_items` parts instead). With `whole`, no part of it starts
// before every piece before it has finished.
struct Piece {
    int64_t offset = 0, bytes = 0;
    int kv_items = 0;
    int64_t kv_bytes = 0;
    bool whole = true;
    int64_t row_bytes = 0, cols = 0;  // of its matrix (a piece's matrices share them)
};

// What a step's matrices are: Llama 3.1 8B Q4_K_M's types, all F16, or all Q4_K (for the readers
// that do a Q4_K row's arithmetic).
enum class Weights { Q4_K_M, F16, Q4_K };

// The 8B Q4_K_M file's tensor types: attn_v and ffn_down are Q6_K on llama.cpp's "more bits"
// layers (the first and last eighth, and every third between), Q4_K elsewhere; the output matrix
// is Q6_K. Rows of 4096 columns: Q4_K 2304 bytes, Q6_K 3360; of 14336: 8064 and 11760. With
// `f16`, every matrix is F16 (2 bytes a value). With `norms_only`, only the pieces after a norm
// (which needs the whole vector) and attention wait for everything before them: O and down wait
// for nothing, the bound of a step whose products start on each part of their input as it is
// made (a head's attention, a run of SwiGLU outputs).
std::vector<Piece> step_pieces(int layers, int64_t depth, Weights type, bool norms_only) {
    std::vector<Piece> pieces;
    int64_t offset = 0;
    // `rows` rows of `cols` columns of Q4_K, or of Q6_K with more bits (Q4_K_M), or of F16.
    const auto matrix = [&](int64_t rows, int64_t cols, bool q6_k, bool after_norm) {
        const int64_t row_bytes = type == Weights::F16                    ? 2 * cols
                                  : type == Weights::Q4_K_M && q6_k ? cols / 256 * 210
                                                                    : cols / 256 * 144;
        pieces.push_back({offset, rows * row_bytes, 0, 0, after_norm || !norms_only, row_bytes, cols});
        offset += rows * row_bytes;
    };
    for (int l = 0; l < layers; ++l) {
        const bool more_bits = l < layers / 8 || l >= 7 * layers / 8 || (l - layers / 8) % 3 == 2;
        // q, k and v in one piece: v's rows as Q4_K's (the same bytes at Q4_K_M but on more-bits
        // layers, where they are 1 MB more).
        matrix(4096 + 1024 + 1024, 4096, false, true);
        if (type == Weights::Q4_K_M && more_bits) pieces.back().bytes += 1024 * (4096 / 256) * (210 - 144);
        offset = pieces.back().offset + pieces.back().bytes;
        // Attention: 8 kv heads, each `depth` f16 keys and values of 128 dims, split over the
        // positions (as flash decoding does) into parts of at most 8 KB.
        const int64_t kv_bytes = 8 * depth * 128 * 2 * 2, parts = (kv_bytes + kKvPartBytes - 1) / kKvPartBytes;
        pieces.push_back({0, 0, static_cast<int>(parts), kv_bytes / parts / 16 * 16, true, 0, 0});
        matrix(4096, 4096, false, false);      // o
        matrix(2 * 14336, 4096, false, true);  // gate, up
        matrix(4096, 14336, more_bits, false); // down
    }
    matrix(128256, 4096, true, true);  // output
    return pieces;
}

int64_t weight_bytes(const std::vector<Piece>& pieces) {
    int64_t total = 0;
    for (const Piece& p : pieces) total += p.bytes;
    return total;
}

__device__ __forceinline__ uint32_t folded(int4 v) { return static_cast<uint32_t>(v.x ^ v.y ^ v.z ^ v.w); }

// The sum is stored only if it equals a value no data here gives, so the reads are kept.
__device__ __forceinline__ void keep(uint32_t sum, int* sink) {
    if (sum == 0x7fedcba9u) *sink = 1;
}

// Which pieces of the pipelined kernel's step wait for the ones before them.
enum class Waits { EveryPiece, AfterNorms, None };

// ---- launches: a kernel a piece ----

__global__ void read_blocks_kernel(const int4* __restrict__ data, int64_t vectors, int* sink) {
    cuda::wait_for_previous_kernel();
    const int64_t per_block = kLaunchBlockBytes / 16;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * per_block;
    uint32_t sum = 0;
    for (int64_t i = first + threadIdx.x; i < min(first + per_block, vectors); i += blockDim.x) sum ^= folded(data[i]);
    keep(sum, sink);
}

// Attention and the small ops (norms, RoPE, SwiGLU, the merge): a block a part of the keys and
// values.
__global__ void read_kv_kernel(const int4* __restrict__ kv, int64_t vectors_per_item, int* sink) {
    cuda::wait_for_previous_kernel();
    uint32_t sum = 0;
    const int4* item = kv + blockIdx.x * vectors_per_item;
    for (int64_t i = threadIdx.x; i < vectors_per_item; i += blockDim.x) sum ^= folded(item[i]);
    keep(sum, sink);
}

__global__ void empty_kernel() { cuda::wait_for_previous_kernel(); }

void record_launches(const std::vector<Piece>& pieces, const int4* weights, const int4* kv, int* sink,
                     cudaStream_t stream) {
    for (const Piece& p : pieces) {
        if (p.bytes > 0) {
            const int64_t vectors = p.bytes / 16;
            const auto blocks = static_cast<unsigned>((p.bytes + kLaunchBlockBytes - 1) / kLaunchBlockBytes);
            cuda::launch(read_blocks_kernel, dim3(blocks), dim3(kLaunchThreads), stream, weights + p.offset / 16,
                         vectors, sink);
        } else {
            // A layer's six small launches: two norms, RoPE with the cache write, attention, its
            // merge, SwiGLU; attention reads the cache.
            cuda::launch(read_kv_kernel, dim3(static_cast<unsigned>(p.kv_items)), dim3(kLaunchThreads), stream, kv,
                         p.kv_bytes / 16, sink);
            for (int i = 0; i < 5; ++i) cuda::launch(empty_kernel, dim3(1), dim3(kLaunchThreads), stream);
        }
    }
}

// ---- persistent kernels: the pieces' shared description ----

constexpr int kMaxPieces = 256;  // 5 a layer and the output: 161 for 32 layers

struct StepPlan {
    int pieces = 0;
    int64_t chunk_bytes = 0;     // a ring stage's bytes
    int64_t chunk_stride[kMaxPieces];  // a piece's chunks: chunk_bytes, or its most whole rows in them
    int64_t row_bytes[kMaxPieces];
    int64_t cols[kMaxPieces];
    int64_t offset[kMaxPieces];
    int64_t bytes[kMaxPieces];
    int chunks[kMaxPieces];  // a weight piece's chunks, or attention's kv items
    int64_t kv_bytes[kMaxPieces];
    bool whole[kMaxPieces];

    // Where chunk `chunk` of weight piece `piece` starts, and its bytes (the last may be short).
    __device__ int64_t chunk_at(int piece, unsigned chunk) const { return offset[piece] + chunk * chunk_stride[piece]; }
    __device__ int64_t chunk_bytes_at(int piece, int64_t at) const {
        return min(chunk_stride[piece], offset[piece] + bytes[piece] - at);
    }
};

// Per piece: chunks handed out, and chunks finished (zeroed before each step). Each counter has
// 256 bytes to itself: warps spinning on one piece's count must not slow the atomics on the next.
constexpr int kCounterStride = 64;
constexpr size_t kCounterBytes = 2 * kMaxPieces * kCounterStride * sizeof(unsigned);

struct StepCounters {
    unsigned* base;
    __device__ unsigned* claimed(int piece) const { return base + piece * kCounterStride; }
    __device__ unsigned* finished(int piece) const { return base + (kMaxPieces + piece) * kCounterStride; }
};

__device__ __forceinline__ unsigned load_acquire(const unsigned* p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ void add_release(unsigned* p, unsigned v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

// Before a part of `piece`: for a whole piece, lane 0 spins until every chunk of the pieces before
// it is finished (back to the last whole one, whose parts each waited for all before it); the warp
// goes on together.
__device__ __forceinline__ void wait_before(const StepPlan& plan, const StepCounters& counters, int piece, int lane) {
    if (piece <= 0 || !plan.whole[piece]) return;
    if (lane == 0) {
        for (int before = piece - 1; before >= 0; --before) {
            while (load_acquire(counters.finished(before)) < static_cast<unsigned>(plan.chunks[before]))
                __nanosleep(64);
            if (plan.whole[before]) break;
        }
    }
    __syncwarp();
}

__device__ __forceinline__ uint32_t read_global(const int4* __restrict__ data, int64_t bytes, int lane) {
    uint32_t sum = 0;
    const int64_t vectors = bytes / 16;
    int64_t i = lane;
    // Four loads in flight a lane.
    for (; i + 3 * kWarp < vectors; i += 4 * kWarp) {
        const int4 a = data[i], b = data[i + kWarp], c = data[i + 2 * kWarp], d = data[i + 3 * kWarp];
        sum ^= folded(a) ^ folded(b) ^ folded(c) ^ folded(d);
    }
    for (; i < vectors; i += kWarp) sum ^= folded(data[i]);
    return sum;
}

// ---- persistent: warps read their chunks straight into registers ----

__global__ void persistent_kernel(const __grid_constant__ StepPlan plan, const int4* __restrict__ weights,
                                  const int4* __restrict__ kv, StepCounters counters, int* sink, unsigned claim) {
    const int lane = threadIdx.x % kWarp;
    uint32_t sum = 0;
    for (int piece = 0; piece < plan.pieces; ++piece) {
        wait_before(plan, counters, piece, lane);
        const auto chunks = static_cast<unsigned>(plan.chunks[piece]);
        unsigned chunk = 0, claimed_end = 0;
        for (;; ++chunk) {
            if (chunk >= claimed_end) {  // `claim` chunks an atomic
                if (lane == 0) chunk = atomicAdd(counters.claimed(piece), claim);
                chunk = __shfl_sync(0xffffffffu, chunk, 0);
                claimed_end = chunk + claim;
            }
            if (chunk >= chunks) break;
            if (plan.bytes[piece] > 0) {
                const int64_t at = plan.chunk_at(piece, chunk);
                sum ^= read_global(weights + at / 16, plan.chunk_bytes_at(piece, at), lane);
            } else {
                sum ^= read_global(kv + chunk * plan.kv_bytes[piece] / 16, plan.kv_bytes[piece], lane);
            }
            __syncwarp();
            if (lane == 0) add_release(counters.finished(piece), 1);
        }
    }
    keep(sum, sink);
}

// ---- pipelined: a copying warp fills a ring of shared-memory stages ahead of the readers ----

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ uint32_t shared_address(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
#endif

__device__ __forceinline__ void barrier_init(uint64_t* bar, unsigned count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(shared_address(bar)), "r"(count) : "memory");
#else
    __trap();  // Hopper only: main() runs the pipelined kernels only there
#endif
}

__device__ __forceinline__ void barrier_arrive(uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(shared_address(bar)) : "memory");
#else
    __trap();  // Hopper only: main() runs the pipelined kernels only there
#endif
}

__device__ __forceinline__ void barrier_arrive_expecting(uint64_t* bar, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(shared_address(bar)), "r"(bytes)
                 : "memory");
#else
    __trap();  // Hopper only: main() runs the pipelined kernels only there
#endif
}

// Waits until the barrier's phase of parity `parity` has completed.
__device__ __forceinline__ void barrier_wait(uint64_t* bar, unsigned parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    const uint32_t address = shared_address(bar);
    uint32_t done = 0;
    while (!done) {
        asm volatile(
            "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(address), "r"(parity)
            : "memory");
    }
#else
    __trap();  // Hopper only: main() runs the pipelined kernels only there
#endif
}

// `bytes` (a multiple of 16) from global to shared memory, counted on `bar` when they land.
__device__ __forceinline__ void bulk_copy(void* to, const void* from, unsigned bytes, uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                     shared_address(to)),
                 "l"(from), "r"(bytes), "r"(shared_address(bar))
                 : "memory");
#else
    __trap();  // Hopper only: main() runs the pipelined kernels only there
#endif
}

__device__ __forceinline__ void prefetch_to_l2(const void* from, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(from), "r"(bytes) : "memory");
#else
    __trap();  // Hopper only: main() runs the pipelined kernels only there
#endif
}

// Walks the weight chunks a block is dealt (b, b + blocks, ... of each weight piece in turn).
struct DealtChunks {
    int piece = 0;
    unsigned chunk = 0;

    __device__ void skip_to_weights(const StepPlan& plan) {
        while (piece < plan.pieces && (plan.bytes[piece] == 0 || chunk >= static_cast<unsigned>(plan.chunks[piece]))) {
            ++piece;
            chunk = blockIdx.x;
        }
    }
    __device__ bool done(const StepPlan& plan) const { return piece >= plan.pieces; }
    __device__ void advance(const StepPlan& plan) {
        chunk += gridDim.x;
        skip_to_weights(plan);
    }
    // Asks L2 for this chunk's bytes.
    __device__ void prefetch(const StepPlan& plan, const int4* weights) const {
        const int64_t at = plan.chunk_at(piece, chunk);
        const auto bytes = static_cast<unsigned>(plan.chunk_bytes_at(piece, at));
        prefetch_to_l2(reinterpret_cast<const char*>(weights) + at, bytes);
    }
};

// What the copying warp tells the reader of a stage.
struct StageTag {
    int piece;
    int chunk;
    int bytes;  // 0: a kv item, read from global memory by the reader
};

constexpr unsigned kEndOfStep = 0xffffffffu;

// The activations a multiplying reader takes: int8 values with a scale and the scaled sum of each
// block of 32 (as the backend's q8 activations), for rows of up to kMaxCols columns.
constexpr int kMaxCols = 14336;  // a multiple of 128: what follows it in shared memory stays aligned
struct Activations {
    const int8_t* values;
    const float* scales;
    const float* sums;
};

// Part of a Q4_K row (in shared memory) times the activations (in shared memory): four
// super-blocks from column `first_col` on; every lane returns its share. A 144-byte super-block is
// d, dmin, 12 packed scales and 128 bytes of nibbles: four runs of 32 bytes, each the low nibbles of
// one 32-value sub-block and the high nibbles of the next. Eight lanes share a super-block: lane l
// the 16 bytes of half l % 2 of run (l % 8) / 2 of super-block l / 8, 16 values of each of two
// sub-blocks (the backend's matrix-vector kernel also takes 16 bytes a lane). Word loads and
// 32-bit offsets: byte loads of the scales and 64-bit index arithmetic cost more instructions
// than the arithmetic itself.
__device__ __forceinline__ float q4k_four_blocks(const uint8_t* blocks, int first_col, const Activations& x,
                                                 int lane) {
    const int run = (lane % 8) / 2, half = lane % 2;
    const uint8_t* b = blocks + (lane / 8) * 144;
    const float2 d_dmin = __half22float2(*reinterpret_cast<const __half2*>(b));
    const auto* packed = reinterpret_cast<const uint32_t*>(b + 4);
    int scale_low, min_low, scale_high, min_high;
    cuda::unpack_scale_min_k4(packed[0], packed[1], packed[2], 2 * run, scale_low, min_low);
    cuda::unpack_scale_min_k4(packed[0], packed[1], packed[2], 2 * run + 1, scale_high, min_high);
    const int4 q = *reinterpret_cast<const int4*>(b + 16 + 32 * run + 16 * half);
    const int first = first_col + (lane / 8) * 256 + 64 * run + 16 * half;  // low values; high ones 32 on
    const int4 x_low = *reinterpret_cast<const int4*>(x.values + first);
    const int4 x_high = *reinterpret_cast<const int4*>(x.values + first + 32);
    constexpr int kLow = 0x0f0f0f0f;
    int low = __dp4a(q.x & kLow, x_low.x, 0);
    low = __dp4a(q.y & kLow, x_low.y, low);
    low = __dp4a(q.z & kLow, x_low.z, low);
    low = __dp4a(q.w & kLow, x_low.w, low);
    int high = __dp4a((q.x >> 4) & kLow, x_high.x, 0);
    high = __dp4a((q.y >> 4) & kLow, x_high.y, high);
    high = __dp4a((q.z >> 4) & kLow, x_high.z, high);
    high = __dp4a((q.w >> 4) & kLow, x_high.w, high);
    const int sub = (first_col + (lane / 8) * 256) / 32 + 2 * run;  // activation blocks of the two sub-blocks
    const float2 scales = *reinterpret_cast<const float2*>(x.scales + sub);
    float sum = d_dmin.x * (static_cast<float>(scale_low * low) * scales.x +
                            static_cast<float>(scale_high * high) * scales.y);
    // The mins once a sub-block: by the first of its two lanes.
    if (half == 0) {
        const float2 sums = *reinterpret_cast<const float2*>(x.sums + sub);
        sum -= d_dmin.y * (static_cast<float>(min_low) * sums.x + static_cast<float>(min_high) * sums.y);
    }
    return sum;
}

// A Q4_K row (in shared memory) times the activations; every lane returns the row's sum.
__device__ float q4k_row_dot(const uint8_t* row, int cols, const Activations& x, int lane) {
    float sum = 0.0f;
#pragma unroll 2
    for (int first_col = 0; first_col < cols; first_col += 1024)
        sum += q4k_four_blocks(row + first_col / 256 * 144, first_col, x, lane);
    return cuda::warp_sum(sum);
}

// With claim == 0, block b takes chunks b, b + blocks, ... of every piece (no atomics), and asks
// L2 for the weight chunks `ahead` of the one it copies (so that memory keeps streaming while the
// readers wait for a piece to finish).
// With kMultiply, the readers multiply each Q4_K row of a stage by the activations (copied into
// shared memory first) and store its sum in `rows_out`, as a matrix-vector product would.
template <bool kMultiply>
__global__ void pipelined_kernel(const __grid_constant__ StepPlan plan, const int4* __restrict__ weights,
                                 const int4* __restrict__ kv, StepCounters counters, int* sink, int stages,
                                 unsigned claim, int ahead, Activations activations, float* rows_out) {
    extern __shared__ __align__(128) unsigned char shared[];
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int readers = blockDim.x / kWarp - 1;
    // The ring, the activations (16-byte loads), then the barriers and the tags.
    unsigned char* ring = shared;
    auto* x_values = reinterpret_cast<int8_t*>(ring + stages * plan.chunk_bytes);
    auto* x_scales = reinterpret_cast<float*>(x_values + kMaxCols);
    float* x_sums = x_scales + kMaxCols / 32;
    auto* full = reinterpret_cast<uint64_t*>(x_sums + kMaxCols / 32);
    uint64_t* empty = full + stages;
    auto* tags = reinterpret_cast<StageTag*>(empty + stages);
    if (kMultiply) {
        for (int i = threadIdx.x; i < kMaxCols / 32; i += blockDim.x) {
            x_scales[i] = activations.scales[i];
            x_sums[i] = activations.sums[i];
        }
        for (int i = threadIdx.x; i < kMaxCols / 4; i += blockDim.x)
            reinterpret_cast<int*>(x_values)[i] = reinterpret_cast<const int*>(activations.values)[i];
    }
    const Activations x{x_values, x_scales, x_sums};
    if (threadIdx.x == 0) {
        for (int s = 0; s < stages; ++s) {
            barrier_init(full + s, 1);
            barrier_init(empty + s, 1);
        }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
    }
    __syncthreads();

    if (warp == readers) {  // the copying warp: lane 0 claims and copies, in ring order
        if (lane != 0) return;
        unsigned item = 0;
        DealtChunks prefetched;
        prefetched.chunk = blockIdx.x;
        prefetched.skip_to_weights(plan);
        if (claim > 0) ahead = 0;
        for (int i = 0; i < ahead && !prefetched.done(plan); ++i, prefetched.advance(plan))
            prefetched.prefetch(plan, weights);
        const auto next_stage = [&](int piece, int chunk, int bytes, const void* from) {
            const int s = static_cast<int>(item % stages);
            const unsigned round = item / stages;
            barrier_wait(empty + s, (round & 1) ^ 1);
            tags[s] = {piece, chunk, bytes};
            if (bytes > 0) {
                barrier_arrive_expecting(full + s, static_cast<unsigned>(bytes));
                bulk_copy(ring + s * plan.chunk_bytes, from, static_cast<unsigned>(bytes), full + s);
                if (ahead > 0 && !prefetched.done(plan)) {
                    prefetched.prefetch(plan, weights);
                    prefetched.advance(plan);
                }
            } else {
                barrier_arrive(full + s);
            }
            ++item;
        };
        for (int piece = 0; piece < plan.pieces; ++piece) {
            const auto chunks = static_cast<unsigned>(plan.chunks[piece]);
            unsigned chunk = claim == 0 ? blockIdx.x : 0, claimed_end = 0;
            for (;; chunk += claim == 0 ? gridDim.x : 1) {
                if (claim > 0 && chunk >= claimed_end) {
                    chunk = atomicAdd(counters.claimed(piece), claim);
                    claimed_end = chunk + claim;
                }
                if (chunk >= chunks) break;
                if (plan.bytes[piece] > 0) {
                    const int64_t at = plan.chunk_at(piece, chunk);
                    const auto bytes = static_cast<int>(plan.chunk_bytes_at(piece, at));
                    next_stage(piece, static_cast<int>(chunk), bytes, reinterpret_cast<const char*>(weights) + at);
                } else {
                    next_stage(piece, static_cast<int>(chunk), 0, nullptr);
                }
            }
        }
        // One end mark for each reader (they take the items in turn).
        for (int r = 0; r < readers; ++r) next_stage(-1, static_cast<int>(kEndOfStep), 0, nullptr);
        return;
    }

    // Readers: reader r takes items r, r + readers, ...: stages s with s % readers == r when
    // `stages` is a multiple of the readers.
    uint32_t sum = 0;
    int ready_piece = -1;  // every piece before this one is known finished
    for (unsigned item = static_cast<unsigned>(warp);; item += static_cast<unsigned>(readers)) {
        const int s = static_cast<int>(item % stages);
        barrier_wait(full + s, (item / stages) & 1);
        const StageTag tag = tags[s];
        if (tag.piece < 0) break;
        if (tag.piece > ready_piece) {
            wait_before(plan, counters, tag.piece, lane);
            ready_piece = tag.piece;
        }
        if (kMultiply && tag.bytes > 0) {
            const unsigned char* stage = ring + s * plan.chunk_bytes;
            const int64_t row_bytes = plan.row_bytes[tag.piece];
            const int64_t first_row = tag.chunk * (plan.chunk_stride[tag.piece] / row_bytes);
            for (int64_t r = 0; r < tag.bytes / row_bytes; ++r) {
                const float y = q4k_row_dot(stage + r * row_bytes, static_cast<int>(plan.cols[tag.piece]), x, lane);
                if (lane == 0) rows_out[first_row + r] = y;
            }
        } else if (tag.bytes > 0) {
            const int4* stage = reinterpret_cast<const int4*>(ring + s * plan.chunk_bytes);
            for (int i = lane; i < tag.bytes / 16; i += kWarp) sum ^= folded(stage[i]);
        } else {
            sum ^= read_global(kv + tag.chunk * plan.kv_bytes[tag.piece] / 16, plan.kv_bytes[tag.piece], lane);
        }
        __syncwarp();
        if (lane == 0) {
            barrier_arrive(empty + s);
            add_release(counters.finished(tag.piece), 1);
        }
    }
    keep(sum, sink);
}

// With `whole_rows`, each chunk holds whole rows of its piece's matrix (for readers that multiply).
StepPlan plan_of(const std::vector<Piece>& pieces, int64_t chunk_bytes, bool whole_rows) {
    StepPlan plan{};
    if (pieces.size() > kMaxPieces) {
        fmt::print(stderr, "cuda_step_stream_bench: {} pieces, at most {}\n", pieces.size(), kMaxPieces);
        std::exit(2);
    }
    plan.pieces = static_cast<int>(pieces.size());
    plan.chunk_bytes = chunk_bytes;
    for (size_t i = 0; i < pieces.size(); ++i) {
        plan.offset[i] = pieces[i].offset;
        plan.bytes[i] = pieces[i].bytes;
        plan.kv_bytes[i] = pieces[i].kv_bytes;
        plan.whole[i] = pieces[i].whole;
        plan.row_bytes[i] = pieces[i].row_bytes;
        plan.cols[i] = pieces[i].cols;
        const int64_t stride = whole_rows && pieces[i].row_bytes > 0
                                   ? std::max<int64_t>(1, chunk_bytes / pieces[i].row_bytes) * pieces[i].row_bytes
                                   : chunk_bytes;
        if (stride > chunk_bytes) {
            fmt::print(stderr, "cuda_step_stream_bench: a row of {} bytes does not fit a {} byte stage\n",
                       pieces[i].row_bytes, chunk_bytes);
            std::exit(2);
        }
        plan.chunk_stride[i] = stride;
        plan.chunks[i] = pieces[i].bytes > 0 ? static_cast<int>((pieces[i].bytes + stride - 1) / stride)
                                             : pieces[i].kv_items;
    }
    return plan;
}

struct Options {
    int layers = 32;
    int64_t depth = 128;
    int64_t chunk_kb = 32;
    int stages = 4;
    int readers = 4;
    int blocks_per_sm = 2;
    unsigned claim = 4;
    Weights weights = Weights::Q4_K_M;
    int ahead = 0;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const auto value = [&] {
            if (i + 1 >= argc) {
                fmt::print(stderr, "cuda_step_stream_bench: {} needs a value\n", argv[i]);
                std::exit(2);
            }
            return std::max(1, std::atoi(argv[++i]));
        };
        if (std::strcmp(argv[i], "--f16") == 0) o.weights = Weights::F16;
        else if (std::strcmp(argv[i], "--multiply") == 0) o.weights = Weights::Q4_K;
        else if (std::strcmp(argv[i], "--layers") == 0) o.layers = value();
        else if (std::strcmp(argv[i], "--depth") == 0) o.depth = value();
        else if (std::strcmp(argv[i], "--chunk") == 0) o.chunk_kb = value();
        else if (std::strcmp(argv[i], "--stages") == 0) o.stages = value();
        else if (std::strcmp(argv[i], "--readers") == 0) o.readers = value();
        else if (std::strcmp(argv[i], "--blocks-per-sm") == 0) o.blocks_per_sm = value();
        else if (std::strcmp(argv[i], "--claim") == 0) o.claim = static_cast<unsigned>(value());
        else if (std::strcmp(argv[i], "--ahead") == 0) o.ahead = value();
        else {
            fmt::print(stderr,
                       "usage: cuda_step_stream_bench [--f16 | --multiply] [--layers N] [--depth N] [--chunk KB] "
                       "[--stages N] [--readers N] [--blocks-per-sm N] [--claim N] [--ahead N]\n");
            std::exit(2);
        }
    }
    return o;
}

// The bytes the weights are filled with: every 144-byte Q4_K super-block's d and dmin 2^-7 (so no
// half is a NaN), the rest a hash of the byte's index. Pieces start on super-blocks.
__host__ __device__ inline uint8_t weight_byte(int64_t i) {
    if (i % 144 < 4) return i % 2 == 0 ? 0x00 : 0x20;
    uint64_t h = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    return static_cast<uint8_t>(h * 0xbf58476d1ce4e5b9ull >> 56);
}

__global__ void fill_weights_kernel(uint8_t* weights, int64_t bytes) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < bytes;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        weights[i] = weight_byte(i);
}

// Row r of the Q4_K matrix at `offset`, decoded by the CPU's reference, times the activations:
// what the multiplying readers must give.
double q4k_row_reference(int64_t offset, int64_t cols, int64_t r, const std::vector<int8_t>& values,
                         const std::vector<float>& scales) {
    const int64_t row_bytes = cols / 256 * 144, row = offset + r * row_bytes;
    std::vector<uint8_t> bytes(static_cast<size_t>(row_bytes));
    for (int64_t i = 0; i < row_bytes; ++i) bytes[static_cast<size_t>(i)] = weight_byte(row + i);
    return hearth::bench::q4k_row_times(bytes.data(), cols, values.data(), scales.data());
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const bool multiply = o.weights == Weights::Q4_K;
    cudaStream_t stream;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    cudaDeviceProp props{};
    check(cudaGetDeviceProperties(&props, 0), "device properties");

    const std::vector<Piece> pieces = step_pieces(o.layers, o.depth, o.weights, false);
    const int64_t total = weight_bytes(pieces);
    int4 *weights = nullptr, *kv = nullptr;
    int* sink = nullptr;
    unsigned* counters = nullptr;
    const int64_t kv_total = 8 * o.depth * 128 * 2 * 2;
    check(cudaMalloc(&weights, total), "the step's weights");
    fill_weights_kernel<<<props.multiProcessorCount * 8, 256, 0, stream>>>(reinterpret_cast<uint8_t*>(weights), total);
    check(cudaStreamSynchronize(stream), "filling the weights");
    check(cudaMalloc(&kv, kv_total), "keys and values");
    check(cudaMemset(kv, 1, kv_total), "keys and values");
    check(cudaMalloc(&sink, sizeof(int)), "sink");
    check(cudaMalloc(&counters, kCounterBytes), "counters");
    const StepCounters step_counters{counters};

    // Activations for the multiplying readers: int8 values, each block's scale and scaled sum.
    std::vector<int8_t> values(kMaxCols);
    std::vector<float> scales(kMaxCols / 32), sums(kMaxCols / 32, 0.0f);
    for (int i = 0; i < kMaxCols; ++i) values[i] = static_cast<int8_t>(static_cast<int>(weight_byte(7 * i + 5)) - 128);
    for (int b = 0; b < kMaxCols / 32; ++b) {
        scales[b] = 0.01f * static_cast<float>(1 + b % 7);
        for (int v = 0; v < 32; ++v) sums[b] += scales[b] * values[32 * b + v];
    }
    int8_t* device_values = nullptr;
    float *device_scales = nullptr, *device_sums = nullptr, *rows_out = nullptr;
    constexpr int64_t kMostRows = 128256;
    check(cudaMalloc(&device_values, kMaxCols), "activations");
    check(cudaMalloc(&device_scales, kMaxCols / 32 * sizeof(float)), "activations");
    check(cudaMalloc(&device_sums, kMaxCols / 32 * sizeof(float)), "activations");
    check(cudaMalloc(&rows_out, kMostRows * sizeof(float)), "row sums");
    check(cudaMemcpy(device_values, values.data(), kMaxCols, cudaMemcpyHostToDevice), "activations");
    check(cudaMemcpy(device_scales, scales.data(), scales.size() * sizeof(float), cudaMemcpyHostToDevice),
          "activations");
    check(cudaMemcpy(device_sums, sums.data(), sums.size() * sizeof(float), cudaMemcpyHostToDevice), "activations");
    const Activations activations{device_values, device_scales, device_sums};

    const char* kind = o.weights == Weights::F16 ? "F16" : multiply ? "all Q4_K" : "Q4_K_M";
    fmt::print("{}: {} SMs; a {} step of {} layers, {:.1f} MB of weights in {} pieces, attention at depth {}\n\n",
               props.name, props.multiProcessorCount, kind, o.layers, total / 1e6, pieces.size(), o.depth);
    fmt::print("| way | us a step | GB/s | % of the probe | tok/s equivalent |\n| --- | ---: | ---: | ---: | ---: |\n");
    double probe_gbs = 0;
    const auto report = [&](const std::string& way, double us) {
        if (us < 0) {
            fmt::print(stderr, "cuda_step_stream_bench: {}: {}\n", way, cudaGetErrorString(cudaGetLastError()));
            std::exit(1);
        }
        const double gbs = total / us / 1e3;
        if (probe_gbs == 0) probe_gbs = gbs;
        fmt::print("| {} | {:.1f} | {:.0f} | {:.1f} | {:.0f} |\n", way, us, gbs, 100.0 * gbs / probe_gbs, 1e6 / us);
    };

    // The probe: every weight byte in one launch.
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
    record_launches({Piece{0, total, 0, 0}}, weights, kv, sink, stream);
    report("probe: one launch", hearth::bench::median_replay_us(stream, 1));

    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
    record_launches(pieces, weights, kv, sink, stream);
    report("launches: a kernel a piece", hearth::bench::median_replay_us(stream, 1));
    std::vector<Piece> weight_pieces;
    for (const Piece& p : pieces)
        if (p.bytes > 0) weight_pieces.push_back(p);
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
    record_launches(weight_pieces, weights, kv, sink, stream);
    report("launches: the weight pieces only", hearth::bench::median_replay_us(stream, 1));

    const int64_t chunk_bytes = o.chunk_kb * 1024;
    const StepPlan plan = plan_of(pieces, chunk_bytes, multiply);
    const StepPlan norms_plan = plan_of(step_pieces(o.layers, o.depth, o.weights, true), chunk_bytes, multiply);
    // No piece waits at all: what the readers' own throughput allows (not a step: a diagnostic).
    StepPlan free_plan = plan;
    for (int i = 0; i < free_plan.pieces; ++i) free_plan.whole[i] = false;
    const int sms = props.multiProcessorCount;
    for (const int per_sm : {o.blocks_per_sm, 2 * o.blocks_per_sm}) {
        const auto blocks = static_cast<unsigned>(sms * per_sm);
        check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
        cudaMemsetAsync(counters, 0, kCounterBytes, stream);
        persistent_kernel<<<blocks, 4 * kWarp, 0, stream>>>(plan, weights, kv, step_counters, sink, o.claim);
        report(fmt::format("persistent: {} blocks of 4 warps a SM, {} KB chunks, {} an atomic", per_sm, o.chunk_kb,
                           o.claim),
               hearth::bench::median_replay_us(stream, 1));
    }

    if (props.major < 9) {
        fmt::print("pipelined: needs the bulk copy engine of compute capability 9.0 (this GPU: {}.{})\n", props.major,
                   props.minor);
        return 0;
    }
    // Stages a multiple of the readers (each reader owns every readers-th stage); then the
    // activations, the barriers and the tags.
    const int stages = (o.stages + o.readers - 1) / o.readers * o.readers;
    const size_t shared = static_cast<size_t>(stages) * chunk_bytes + 2 * stages * sizeof(uint64_t) +
                          stages * sizeof(StageTag) + 2 * (kMaxCols / 32) * sizeof(float) + kMaxCols;
    for (auto* kernel : {pipelined_kernel<false>, pipelined_kernel<true>})
        check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
              "shared memory for the ring");
    int resident = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, pipelined_kernel<true>, (o.readers + 1) * kWarp,
                                                        shared),
          "occupancy");
    // Chunks claimed one an atomic, or dealt in turn (and with --ahead, asked of L2 ahead); every
    // piece waiting for the one before, or only those after a norm and attention; reading, or (with
    // --multiply) multiplying.
    struct Variant {
        unsigned claim;
        int ahead;
        Waits waits;
        bool multiplies;
    };
    std::vector<Variant> variants;
    for (const bool multiplies : {false, true}) {
        if (multiplies && !multiply) continue;
        for (const Waits waits : {Waits::EveryPiece, Waits::AfterNorms})
            for (const unsigned claim : {1u, 0u}) variants.push_back({claim, 0, waits, multiplies});
        variants.push_back({1u, 0, Waits::None, multiplies});
    }
    if (o.ahead > 0) variants.push_back({0, o.ahead, Waits::EveryPiece, false});
    for (int per_sm = 1; per_sm <= std::min(resident, 2); ++per_sm)
        for (const Variant& v : variants) {
            const auto blocks = static_cast<unsigned>(sms * per_sm);
            check(cudaMemset(rows_out, 0xff, kMostRows * sizeof(float)), "poisoning the row sums");
            check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
            cudaMemsetAsync(counters, 0, kCounterBytes, stream);
            const StepPlan& p = v.waits == Waits::AfterNorms ? norms_plan : v.waits == Waits::None ? free_plan : plan;
            const dim3 threads((o.readers + 1) * kWarp);
            const auto kernel = v.multiplies ? pipelined_kernel<true> : pipelined_kernel<false>;
            kernel<<<blocks, threads, shared, stream>>>(p, weights, kv, step_counters, sink, stages, v.claim, v.ahead,
                                                        activations, rows_out);
            const std::string chunks = v.claim == 0 ? (v.ahead > 0 ? fmt::format("dealt, {} asked of L2 ahead", v.ahead)
                                                                  : std::string("dealt in turn"))
                                                    : std::string("one an atomic");
            report(fmt::format("pipelined{}: {} a SM, {} readers, {} x {} KB, chunks {}, {}",
                               v.multiplies ? " and multiplying" : "", per_sm, o.readers, stages, o.chunk_kb, chunks,
                               v.waits == Waits::AfterNorms ? "waits after norms only"
                               : v.waits == Waits::None     ? "nothing waits (the readers' own bound)"
                                                            : "every piece waits"),
                   hearth::bench::median_replay_us(stream, 1));
            if (!v.multiplies) continue;
            // The output matrix is the last piece, so its rows are what rows_out holds.
            const Piece& output = pieces.back();
            std::vector<float> got(32);  // rows of several chunks, and so of several readers
            check(cudaMemcpy(got.data(), rows_out, got.size() * sizeof(float), cudaMemcpyDeviceToHost), "row sums");
            for (int64_t r = 0; r < static_cast<int64_t>(got.size()); ++r) {
                const double want = q4k_row_reference(output.offset, output.cols, r, values, scales);
                if (!(std::fabs(got[r] - want) <= 1e-4 * std::fabs(want) + 1e-3)) {
                    fmt::print(stderr, "cuda_step_stream_bench: output row {} is {}, the reference {}\n", r, got[r],
                               want);
                    std::exit(1);
                }
            }
        }
    if (resident < 1) fmt::print("pipelined: {} KB of shared memory a block does not fit a SM\n", shared / 1024);

    cudaFree(rows_out);
    cudaFree(device_sums);
    cudaFree(device_scales);
    cudaFree(device_values);
    cudaFree(counters);
    cudaFree(sink);
    cudaFree(kv);
    cudaFree(weights);
    cudaStreamDestroy(stream);
    return 0;
}
