// The CUDA backend: backend::Backend's ops on one NVIDIA GPU. Weights are uploaded once at load,
// in their GGUF block formats (Q8_0 and Q6_K rows split for 16-byte loads, see kernels.h);
// activations and the KV cache live in device memory; every op is enqueued on one stream and
// only read() waits for it. Decoding (up to kMaxMatvecTokens tokens) runs matrix-vector kernels
// at memory speed; batched decoding (up to kMaxMmaTokens, a token per sequence) int8 tensor-core
// kernels on the quantized weights; longer prompts dequantize weight slabs to f16 for cuBLAS's
// tensor-core GEMM, and their attention is two batched GEMMs on cuBLAS too. The KV cache is a
// pool of blocks that sequences own through block tables (backend::KvBatch).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/op_profile.h"

namespace hearth::cuda {

// Memory CUDA allocated, freed with its owner: device memory, or page-locked host memory (copies
// from it can be recorded in a CUDA graph).
enum class MemoryKind { Device, PinnedHost };

template <MemoryKind kKind>
class CudaMemory {
  public:
    CudaMemory() = default;
    // Throws hearth::Error naming `what` (and, on the device, what is free) when it cannot.
    CudaMemory(size_t bytes, const char* what);
    CudaMemory(CudaMemory&& other) noexcept;
    CudaMemory& operator=(CudaMemory&& other) noexcept;
    CudaMemory(const CudaMemory&) = delete;
    CudaMemory& operator=(const CudaMemory&) = delete;
    ~CudaMemory();

    template <typename T = uint8_t>
    T* as() const {
        return static_cast<T*>(data_);
    }
    size_t bytes() const { return bytes_; }

  private:
    void release();

    void* data_ = nullptr;
    size_t bytes_ = 0;
};

using DeviceBuffer = CudaMemory<MemoryKind::Device>;
class CudaKvCache;
using PinnedBuffer = CudaMemory<MemoryKind::PinnedHost>;

class CudaBackend final : public backend::Backend {
  public:
    // Throws hearth::Error when the device does not exist or cannot be used.
    explicit CudaBackend(int device = 0);
    ~CudaBackend() override;
    CudaBackend(const CudaBackend&) = delete;
    CudaBackend& operator=(const CudaBackend&) = delete;

    std::string_view name() const override { return "cuda"; }

    backend::Activations allocate(int64_t rows, int64_t cols) override;
    backend::HostFloats allocate_host(int64_t count) override;
    std::unique_ptr<backend::KvCache> create_kv_cache(const backend::KvCacheShape& shape) override;
    bool supports(quant::Type weight_type) const override;
    // Uploads every weight, the embedding table too (its rows are gathered on the GPU).
    std::vector<const backend::Weight*> load_weights(std::span<const backend::Weight* const> weights) override;
    // Decoding passes (no sequence with more than kMaxMatvecTokens rows) run as a CUDA graph: the
    // first pass of a shape (cache, workspace, rows, block tables' size) runs op by op (sizing
    // every buffer), the second is recorded, later ones replay the recording with new token ids,
    // positions and tables. HEARTH_CUDA_GRAPHS=0 turns this off.
    void begin_forward(const backend::KvCache& cache, backend::Activations hidden, const backend::KvBatch& rows) override;
    uint64_t matmul_bytes(const backend::Weight& weight) const override;

    void embed(const backend::Weight& table, std::span<const int32_t> tokens, backend::Activations out) override;
    void rmsnorm(backend::Activations x, const backend::Weight& weight, float epsilon, backend::Activations out) override;
    void matmul(const backend::Weight& weight, backend::Activations x, backend::Activations out) override;
    // Decoding: one launch for each run of products whose weights share a type.
    void matmuls(std::span<const Product> products, backend::Activations x) override;
    // The sum happens in the product's kernel (matvec) or through cuBLAS's beta (GEMM): no add.
    void matmul_add(const backend::Weight& weight, backend::Activations x, backend::Activations scratch,
                    backend::Activations out) override;
    void rope(backend::Activations x, std::span<const int32_t> positions, const backend::RopeParams& rope) override;
    void attention(backend::KvCache& cache, int64_t layer, backend::Activations q, backend::Activations k,
                   backend::Activations v, const backend::KvBatch& rows, float scale,
                   backend::Activations out) override;
    void rope_attention(backend::KvCache& cache, int64_t layer, backend::Activations q, backend::Activations k,
                        backend::Activations v, const backend::KvBatch& rows, const backend::RopeParams& rope,
                        float scale, backend::Activations out) override;
    void swiglu(backend::Activations gate, backend::Activations up) override;
    void add(backend::Activations x, backend::Activations y) override;
    void read(backend::Activations x, float* host) override;
    void argmax(backend::Activations x, int32_t* host_columns, float* host_values) override;
    void top_k(backend::Activations x, int k, int32_t* host_columns, float* host_values) override;

    // Outside a recorded pass only: a pass that starts with it (the second part of a model split
    // over two backends) runs op by op.
    void write(backend::Activations x, const float* host) override;
    // A 16-byte-load kernel over 1 GiB (or a quarter of the free memory), best of 7 runs.
    double measure_read_bandwidth() override;

  private:
    enum class Mode { Eager, Record, Replay };
    struct StepGraph {
        int passes = 0;            // single-token passes seen
        void* exec = nullptr;      // cudaGraphExec_t, once recorded
    };
    // Mode::Record: stops recording and instantiates; Record or Replay: launches the graph.
    void finish_step();
    // A buffer that recorded passes use moved: record them again.
    void forget_graphs();
    // Host-side inputs of the pass: into pinned memory, and (unless replaying) a recorded copy.
    const int32_t* upload_small(std::span<const int32_t> values, PinnedBuffer& pinned, DeviceBuffer& device,
                                const char* what);

    struct Uploaded {
        DeviceBuffer buffer;
        DeviceMatrix matrix;
    };
    const Uploaded& upload(const backend::Weight& weight);
    const DeviceMatrix& matrix_of(const backend::Weight& weight);
    // Grows `buffer` to at least `bytes` (contents lost).
    void reserve(DeviceBuffer& buffer, size_t bytes, const char* what);
    // The same for a buffer only ops after a pass's graph use (argmax, top-k): recorded passes stay.
    void reserve_after_pass(DeviceBuffer& buffer, size_t bytes, const char* what);
    // Ends a recording that an op's error cut short; the pass is recorded again next time.
    void drop_recording();
    // Device copy of positions (kept while the same positions come again).
    const int32_t* device_positions(std::span<const int32_t> positions);
    // The activations x rounded to int8, made once for the matmuls that share x.
    void quantize_once(backend::Activations x);
    // What an op writing `out` should also write for the products that read it next (int8 blocks,
    // f16 or nothing), with room made for it; then, once written, noting that it is there.
    ActivationCopies copies_for(backend::Activations out);
    void now_copied(backend::Activations out, const ActivationCopies& copies);
    // Room for x rounded to int8 (values and block scales), and noting that it is there.
    void reserve_quantized(backend::Activations x);
    void now_quantized(backend::Activations x);
    // The same for x as f16.
    void reserve_f16(backend::Activations x);
    void now_f16(backend::Activations x);
    // x as f16 for cuBLAS, converted once for the GEMMs that share it (Q, K, V; gate, up).
    const uint16_t* f16_copy(backend::Activations x);
    // An op wrote `out`: quantized and f16 copies of it are stale.
    void wrote(backend::Activations out);
    void multiply(std::span<const Product> products, backend::Activations x, bool accumulate);
    void gemm(const DeviceMatrix& w, backend::Activations x, backend::Activations out, bool accumulate);
    // The rope frequencies on the device, uploaded when `rope` differs from the last.
    void use_rope(const backend::RopeParams& rope);
    // The block tables and rows' sequences of a pass, on the device (one copy per pass).
    KvPages device_pages(const backend::KvBatch& rows);
    // An attention op's first `count` rows of the pass: checked against the cache, and their
    // positions and block tables on the device.
    struct AttentionRows {
        backend::KvBatch batch;
        const int32_t* positions;
        KvPages pages;
    };
    AttentionRows attention_rows(const backend::KvCacheShape& shape, const backend::KvBatch& rows, int64_t count);
    // Attention over keys and values already stored: each run of more than kMaxMatvecTokens rows of
    // one sequence (a prompt) on cuBLAS, the other rows in one decode launch.
    void attend(const CudaKvCache& cache, int64_t layer, backend::Activations q, const AttentionRows& rows, float scale,
                backend::Activations out);
    // Decode attention for rows [first, first + count) of q.
    void decode_attention(const CudaKvCache& cache, int64_t layer, backend::Activations q, int64_t first, int64_t count,
                          const int32_t* device_positions, KvPages pages, float scale, backend::Activations out);
    // Prompt attention for rows [first, first + count) of q, all of one sequence, whose block table
    // (none: the cache in order) is `table`: its products on cuBLAS.
    void prompt_attention(const CudaKvCache& cache, int64_t layer, backend::Activations q, int64_t first, int64_t count,
                          std::span<const int32_t> positions, const int32_t* device_positions, const int32_t* table,
                          float scale, backend::Activations out);
    void check_launch(const char* op);

    Stream stream_ = nullptr;
    void* cublas_ = nullptr;  // cublasHandle_t
    std::vector<DeviceBuffer> allocations_;
    std::unordered_map<const uint8_t*, Uploaded> uploaded_;

    DeviceBuffer quantized_values_, quantized_scales_;
    const float* quantized_source_ = nullptr;
    int64_t quantized_rows_ = 0;
    DeviceBuffer f16_activations_, f16_weights_;
    const float* f16_source_ = nullptr;  // what f16_activations_ holds
    int64_t f16_rows_ = 0;
    DeviceBuffer positions_, tokens_, tables_, sequences_;
    PinnedBuffer positions_pinned_, tokens_pinned_, tables_pinned_, sequences_pinned_;
    std::vector<int32_t> positions_host_;
    bool positions_current_ = false;  // positions_ holds this pass's positions
    std::vector<int32_t> tables_host_, sequences_host_;
    bool pages_current_ = false;      // tables_ and sequences_ hold this pass's
    bool in_pass_ = false;            // from begin_forward to the pass's end (finish_step)
    Mode mode_ = Mode::Eager;
    bool graphs_enabled_ = true;
    bool multiplied_any_ = false, all_f16_mma_ = true;  // over every product so far
    // A recorded pass's shape: the KV cache's id (a cache freed and another made at its address
    // must not replay), the workspace, the rows, and the block tables' size and stride (their
    // copies are recorded with their sizes).
    struct PassShape {
        uint64_t cache;
        const void* hidden;
        int64_t rows, table_entries, table_stride;
        auto operator<=>(const PassShape&) const = default;
    };
    std::map<PassShape, StepGraph> graphs_;
    StepGraph* step_ = nullptr;
    DeviceBuffer inverse_frequencies_;
    backend::RopeParams rope_params_;
    DeviceBuffer attention_scratch_;
    DeviceBuffer prompt_scores_, f16_kv_, attention_pointers_;
    DeviceBuffer probe_sink_;
    DeviceBuffer argmax_out_, top_k_out_;
    std::unique_ptr<OpProfile> profile_;  // HEARTH_CUDA_PROFILE=1 only
};

}  // namespace hearth::cuda
