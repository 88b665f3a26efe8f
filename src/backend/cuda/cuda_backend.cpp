#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

#include "backend/cuda/cublas_library.h"
#include "common/error.h"
#include "common/strings.h"
#include "quant/quant.h"

namespace hearth::cuda {
namespace {

void check(cudaError_t error, const char* what) {
    if (error != cudaSuccess) fail("CUDA: {}: {}", what, cudaGetErrorString(error));
}

void check(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS) fail("cuBLAS: {}: status {}", what, static_cast<int>(status));
}

cublasHandle_t as_cublas(void* handle) { return static_cast<cublasHandle_t>(handle); }

static_assert(kKvBlockPositions == backend::kKvBlockSize);

// Without block tables a row's position is its slot: it must lie inside the cache. (Tables are
// checked by the model, which builds them.)
void check_positions(const backend::KvCacheShape& shape, const backend::KvBatch& rows) {
    if (rows.paged() || rows.positions.empty()) return;
    const int64_t last = *std::max_element(rows.positions.begin(), rows.positions.end());
    if (last >= shape.capacity) fail("attention: position {} is past the cache's {} positions", last, shape.capacity);
}

}  // namespace

class CudaKvCache final : public backend::KvCache {
  public:
    explicit CudaKvCache(const backend::KvCacheShape& shape)
        : shape_(shape), row_bytes_(quant::row_bytes(shape.type, shape.head_dim).value_or(0)) {
        if (row_bytes_ == 0 || (shape.type != quant::Type::F16 && shape.type != quant::Type::Q8_0))
            fail("CUDA KV cache: type {} with head size {} is not supported (f16, or q8_0 with a head size that is a "
                 "multiple of 32)",
                 quant::type_name(shape.type), shape.head_dim);
        memory_ = DeviceBuffer(shape.bytes(), "KV cache");
        // Committed and cleared now, as llama.cpp clears its cache: nothing reads it unwritten.
        check(cudaMemset(memory_.as(), 0, memory_.bytes()), "clearing the KV cache");
    }

    // Unique for the process: a later cache may get this one's address, never its id (recorded
    // passes are keyed by it and hold this cache's device pointers).
    uint64_t id() const { return id_; }

    const backend::KvCacheShape& shape() const override { return shape_; }

    // Keys (which = 0) or values (1) of one layer.
    KvRows rows(int64_t layer, int which) const {
        const size_t head_stride = row_bytes_ * static_cast<size_t>(shape_.capacity);
        const size_t layer_bytes = 2 * head_stride * static_cast<size_t>(shape_.kv_heads);
        uint8_t* base = memory_.as() + layer * layer_bytes + which * head_stride * shape_.kv_heads;
        const uint32_t type = shape_.type == quant::Type::F16 ? type_id::F16 : type_id::Q8_0;
        return {base, head_stride, row_bytes_, type};
    }

  private:
    static inline std::atomic<uint64_t> next_id_{1};
    backend::KvCacheShape shape_;
    size_t row_bytes_;
    DeviceBuffer memory_;
    uint64_t id_ = next_id_++;
};

template <MemoryKind kKind>
CudaMemory<kKind>::CudaMemory(size_t bytes, const char* what) : bytes_(bytes) {
    if (bytes == 0) return;
    if (kKind == MemoryKind::PinnedHost) {
        if (cudaMallocHost(&data_, bytes) != cudaSuccess) {
            cudaGetLastError();
            fail("CUDA: cannot allocate {} of page-locked host memory for {}", format_bytes(bytes), what);
        }
        return;
    }
    if (cudaMalloc(&data_, bytes) != cudaSuccess) {
        cudaGetLastError();
        size_t free_bytes = 0, total_bytes = 0;
        cudaMemGetInfo(&free_bytes, &total_bytes);
        fail("CUDA: cannot allocate {} for {}: {} of {} free on the GPU", format_bytes(bytes), what,
             format_bytes(free_bytes), format_bytes(total_bytes));
    }
}

template <MemoryKind kKind>
CudaMemory<kKind>::CudaMemory(CudaMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

template <MemoryKind kKind>
CudaMemory<kKind>& CudaMemory<kKind>::operator=(CudaMemory&& other) noexcept {
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
}

template <MemoryKind kKind>
CudaMemory<kKind>::~CudaMemory() {
    release();
}

template <MemoryKind kKind>
void CudaMemory<kKind>::release() {
    if (!data_) return;
    if (kKind == MemoryKind::PinnedHost) cudaFreeHost(data_);
    else cudaFree(data_);
    data_ = nullptr;
    bytes_ = 0;
}

template class CudaMemory<MemoryKind::Device>;
template class CudaMemory<MemoryKind::PinnedHost>;

CudaBackend::CudaBackend(int device) {
    if (const char* graphs = std::getenv("HEARTH_CUDA_GRAPHS")) graphs_enabled_ = std::string_view(graphs) != "0";
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        const cudaError_t error = cudaGetLastError();
        fail("CUDA: no GPU found ({})", count == 0 && error == cudaSuccess ? "no device" : cudaGetErrorString(error));
    }
    if (device < 0 || device >= count) fail("CUDA: --device {}: this machine has {} GPU(s), 0 to {}", device, count, count - 1);
    check(cudaSetDevice(device), "selecting the device");
    cudaDeviceProp props{};
    check(cudaGetDeviceProperties(&props, device), "reading the device's properties");
    if (props.major < 6 || (props.major == 6 && props.minor < 1))
        fail("CUDA: {} has compute capability {}.{}; hearth needs 6.1 or newer (dp4a)", props.name, props.major,
             props.minor);
    cudaStream_t stream = nullptr;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "creating a stream");
    stream_ = stream;
    cublasHandle_t handle = nullptr;
    check(cublas_library().create(&handle), "creating a handle");
    cublas_ = handle;
    check(cublas_library().set_stream(handle, stream), "binding the stream");
    if (OpProfile::wanted()) {
        profile_ = std::make_unique<OpProfile>(stream_);
        graphs_enabled_ = false;
    }
}

CudaBackend::~CudaBackend() {
    // A pass that threw while being recorded leaves its thread capturing, which would fail the next
    // backend's first synchronous call.
    drop_recording();
    if (stream_) cudaStreamSynchronize(stream_);
    profile_.reset();
    for (auto& [key, graph] : graphs_)
        if (graph.exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph.exec));
    if (cublas_) cublas_library().destroy(as_cublas(cublas_));
    if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::check_launch(const char* op) {
    check(cudaGetLastError(), op);
    if (profile_) profile_->after(op);
}

backend::Activations CudaBackend::allocate(int64_t rows, int64_t cols) {
    allocations_.emplace_back(static_cast<size_t>(rows * cols) * sizeof(float), "activations");
    return {allocations_.back().as<float>(), rows, cols};
}

backend::HostFloats CudaBackend::allocate_host(int64_t count) {
    void* memory = nullptr;
    if (cudaMallocHost(&memory, static_cast<size_t>(count) * sizeof(float)) != cudaSuccess) {
        cudaGetLastError();
        return Backend::allocate_host(count);  // page-locked memory is scarce; pageable still works
    }
    return {static_cast<float*>(memory), [](float* p) { cudaFreeHost(p); }};
}

std::unique_ptr<backend::KvCache> CudaBackend::create_kv_cache(const backend::KvCacheShape& shape) {
    if (shape.head_dim > 256 || shape.head_dim % 32 != 0)
        fail("CUDA attention: head size {} is not supported (a multiple of 32, at most 256)", shape.head_dim);
    return std::make_unique<CudaKvCache>(shape);
}

bool CudaBackend::supports(quant::Type weight_type) const { return can_multiply(static_cast<uint32_t>(weight_type)); }

const CudaBackend::Uploaded& CudaBackend::upload(const backend::Weight& weight) {
    const uint32_t type = static_cast<uint32_t>(weight.type);
    const size_t stride = device_row_stride(type, weight.row_bytes);
    Uploaded up{DeviceBuffer(stride * static_cast<size_t>(weight.rows), weight.name.c_str()), {}};
    up.matrix = {type, up.buffer.as(), weight.rows, weight.cols, stride, device_scales_offset(type, weight.cols)};
    if (!has_split_layout(type)) {
        check(cudaMemcpy(up.buffer.as(), weight.data, up.buffer.bytes(), cudaMemcpyHostToDevice), "uploading a weight");
    } else {
        // Split on the host a slab of rows at a time.
        const int64_t rows_per_slab = std::max<int64_t>(1, static_cast<int64_t>((16u << 20) / stride));
        std::vector<uint8_t> staging(rows_per_slab * stride);
        for (int64_t first = 0; first < weight.rows; first += rows_per_slab) {
            const int64_t rows = std::min(rows_per_slab, weight.rows - first);
            split_rows(type, weight.data + first * weight.row_bytes, rows, weight.cols, weight.row_bytes, staging.data());
            check(cudaMemcpy(up.buffer.as() + first * stride, staging.data(), rows * stride, cudaMemcpyHostToDevice),
                  "uploading a weight");
        }
    }
    return uploaded_.emplace(weight.data, std::move(up)).first->second;
}

std::vector<const backend::Weight*> CudaBackend::load_weights(std::span<const backend::Weight* const> weights) {
    std::vector<const backend::Weight*> copied;
    for (const backend::Weight* weight : weights) {
        if (uploaded_.contains(weight->data)) continue;
        upload(*weight);
        copied.push_back(weight);
    }
    return copied;
}

const DeviceMatrix& CudaBackend::matrix_of(const backend::Weight& weight) {
    const auto found = uploaded_.find(weight.data);
    if (found == uploaded_.end()) return upload(weight).matrix;
    const DeviceMatrix& m = found->second.matrix;
    // Keyed by the host address: a different tensor there means its owner freed and reused it.
    if (m.type != static_cast<uint32_t>(weight.type) || m.rows != weight.rows || m.cols != weight.cols)
        fail("CUDA: weight '{}' was uploaded as another tensor of the same address", weight.name);
    return m;
}

uint64_t CudaBackend::matmul_bytes(const backend::Weight& weight) const {
    if (const auto found = uploaded_.find(weight.data); found != uploaded_.end())
        return static_cast<uint64_t>(found->second.matrix.rows) * found->second.matrix.row_stride;
    return Backend::matmul_bytes(weight);
}

void CudaBackend::reserve(DeviceBuffer& buffer, size_t bytes, const char* what) {
    if (buffer.bytes() >= bytes) return;
    if (mode_ != Mode::Eager) fail("CUDA: {} grew while a pass was being recorded", what);
    // The old buffer may still be in use by enqueued kernels.
    check(cudaStreamSynchronize(stream_), what);
    buffer = DeviceBuffer(bytes, what);
    forget_graphs();
}

void CudaBackend::reserve_after_pass(DeviceBuffer& buffer, size_t bytes, const char* what) {
    if (buffer.bytes() >= bytes) return;
    check(cudaStreamSynchronize(stream_), what);
    buffer = DeviceBuffer(bytes, what);
}

void CudaBackend::wrote(backend::Activations out) {
    if (out.data == quantized_source_) quantized_source_ = nullptr;
    if (out.data == f16_source_) f16_source_ = nullptr;
}

const uint16_t* CudaBackend::f16_copy(backend::Activations x) {
    if (f16_source_ == x.data && f16_rows_ == x.rows) return f16_activations_.as<uint16_t>();
    reserve_f16(x);
    convert_to_f16(x.data, x.rows * x.cols, f16_activations_.as<uint16_t>(), stream_);
    check_launch("converting activations to f16");
    now_f16(x);
    return f16_activations_.as<uint16_t>();
}

void CudaBackend::reserve_f16(backend::Activations x) {
    reserve(f16_activations_, static_cast<size_t>(x.rows * x.cols) * 2, "f16 activations");
}

void CudaBackend::now_f16(backend::Activations x) {
    f16_source_ = x.data;
    f16_rows_ = x.rows;
}

void CudaBackend::drop_recording() {
    if (mode_ != Mode::Record) return;
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(stream_, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    if (step_) step_->passes = 0;
    mode_ = Mode::Eager;
}

void CudaBackend::begin_forward(const backend::KvCache& cache, backend::Activations hidden, const backend::KvBatch& rows) {
    // The last pass threw while being recorded: record again next time.
    drop_recording();
    mode_ = Mode::Eager;
    step_ = nullptr;
    if (profile_) profile_->begin_pass(rows.rows());
    positions_current_ = false;
    pages_current_ = false;
    in_pass_ = true;
    quantized_source_ = nullptr;
    f16_source_ = nullptr;
    // Recorded: decoding passes, whose ops depend on nothing but their shape (a prompt's attention
    // sizes its products by its positions on the host).
    if (!graphs_enabled_ || rows.rows() > kMaxMmaTokens) return;
    bool decoding = true;
    rows.for_each_sequence([&](int64_t, int64_t count) { decoding = decoding && count <= kMaxMatvecTokens; });
    if (!decoding) return;
    const PassShape shape{dynamic_cast<const CudaKvCache&>(cache).id(), hidden.data, rows.rows(),
                          static_cast<int64_t>(rows.tables.size()), rows.table_stride};
    step_ = &graphs_[shape];
    if (step_->exec) {
        mode_ = Mode::Replay;
    } else if (++step_->passes >= 2) {
        check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "recording a pass");
        mode_ = Mode::Record;
    }
}

void CudaBackend::forget_graphs() {
    for (auto& [key, graph] : graphs_)
        if (graph.exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph.exec));
    graphs_.clear();
    step_ = nullptr;
}

void CudaBackend::finish_step() {
    if (mode_ == Mode::Record) {
        cudaGraph_t graph = nullptr;
        check(cudaStreamEndCapture(stream_, &graph), "recording a pass");
        cudaGraphExec_t exec = nullptr;
        const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        check(instantiated, "instantiating the recorded pass");
        step_->exec = exec;
    }
    if (mode_ != Mode::Eager) check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(step_->exec), stream_), "replaying a pass");
    mode_ = Mode::Eager;
    in_pass_ = false;
}

const int32_t* CudaBackend::upload_small(std::span<const int32_t> values, PinnedBuffer& pinned, DeviceBuffer& device,
                                         const char* what) {
    const size_t bytes = values.size_bytes();
    if (pinned.bytes() < bytes) {
        if (mode_ != Mode::Eager) fail("CUDA: {} grew while a pass was being recorded", what);
        check(cudaStreamSynchronize(stream_), what);  // the old buffer may still be read
        pinned = PinnedBuffer(std::max<size_t>(bytes, 4096), what);
        forget_graphs();
    }
    reserve(device, std::max<size_t>(bytes, 4096), what);
    // The previous pass has finished (read() waits for it), so the pinned memory is free.
    std::memcpy(pinned.as(), values.data(), bytes);
    if (mode_ != Mode::Replay)
        check(cudaMemcpyAsync(device.as(), pinned.as(), bytes, cudaMemcpyHostToDevice, stream_), what);
    return device.as<int32_t>();
}

void CudaBackend::embed(const backend::Weight& table, std::span<const int32_t> tokens, backend::Activations out) {
    const int32_t* ids = upload_small(tokens, tokens_pinned_, tokens_, "token ids");
    if (mode_ == Mode::Replay) return;
    gather_rows(matrix_of(table), ids, static_cast<int64_t>(tokens.size()), out.data, stream_);
    check_launch("embedding");
    wrote(out);
}

void CudaBackend::rmsnorm(backend::Activations x, const backend::Weight& weight, float epsilon, backend::Activations out) {
    if (mode_ == Mode::Replay) return;
    const auto* w = reinterpret_cast<const float*>(matrix_of(weight).data);
    const ActivationCopies copies = copies_for(out);
    if (!copies.values && !copies.f16) {
        cuda::rmsnorm(x.data, x.rows, x.cols, w, epsilon, out.data, stream_);
        check_launch("rmsnorm");
        wrote(out);
        return;
    }
    cuda::rmsnorm_copied(x.data, x.rows, x.cols, w, epsilon, out.data, copies, stream_);
    check_launch("rmsnorm");
    now_copied(out, copies);
}

ActivationCopies CudaBackend::copies_for(backend::Activations out) {
    // Whole blocks only, and only where products read a copy: int8 up to the tensor-core kernels'
    // token count, f16 from kMinF16MmaTokens where every product seen takes f16 (or cuBLAS does,
    // past kMaxMmaTokens).
    if (out.cols % 32 != 0) return {};
    const bool f16 = out.rows >= kMinF16MmaTokens && (out.rows > kMaxMmaTokens || (multiplied_any_ && all_f16_mma_));
    if (f16) {
        reserve_f16(out);
        return {nullptr, nullptr, f16_activations_.as<uint16_t>()};
    }
    if (out.rows > kMaxMmaTokens) return {};
    reserve_quantized(out);
    return {quantized_values_.as<int8_t>(), quantized_scales_.as<float>(), nullptr};
}

void CudaBackend::now_copied(backend::Activations out, const ActivationCopies& copies) {
    wrote(out);  // whatever copies of it there were are stale
    if (copies.values) now_quantized(out);
    if (copies.f16) now_f16(out);
}

void CudaBackend::reserve_quantized(backend::Activations x) {
    reserve(quantized_values_, static_cast<size_t>(x.rows * x.cols), "quantized activations");
    reserve(quantized_scales_, static_cast<size_t>(x.rows * x.cols / 32) * 2 * sizeof(float), "quantized activations");
}

void CudaBackend::now_quantized(backend::Activations x) {
    quantized_source_ = x.data;
    quantized_rows_ = x.rows;
}

void CudaBackend::quantize_once(backend::Activations x) {
    if (quantized_source_ == x.data && quantized_rows_ == x.rows) return;
    reserve_quantized(x);
    quantize_activations(x.data, x.rows, x.cols, quantized_values_.as<int8_t>(), quantized_scales_.as<float>(), stream_);
    check_launch("quantizing activations");
    now_quantized(x);
}

void CudaBackend::matmul(const backend::Weight& weight, backend::Activations x, backend::Activations out) {
    const Product product{&weight, out};
    multiply({&product, 1}, x, false);
}

void CudaBackend::matmuls(std::span<const Product> products, backend::Activations x) { multiply(products, x, false); }

void CudaBackend::matmul_add(const backend::Weight& weight, backend::Activations x, backend::Activations /*scratch*/,
                             backend::Activations out) {
    const Product product{&weight, out};
    multiply({&product, 1}, x, true);
}

void CudaBackend::multiply(std::span<const Product> products, backend::Activations x, bool accumulate) {
    if (mode_ == Mode::Replay) return;
    // What copies_for writes: f16 only where every product takes it (a model's matrices are all
    // seen in its first pass).
    multiplied_any_ = true;
    for (const Product& p : products) all_f16_mma_ = all_f16_mma_ && has_f16_mma(matrix_of(*p.weight).type);
    for (size_t i = 0; i < products.size();) {
        const DeviceMatrix& first = matrix_of(*products[i].weight);
        const MatmulPath path = matmul_path(first.type, x.rows);
        if (path == MatmulPath::Mma) {
            // A run of small products whose weights share a type: one launch.
            MatvecProduct batch[kMaxFusedMmas];
            int count = 0;
            int64_t rows = 0;
            for (; i < products.size() && count < kMaxFusedMmas; ++i) {
                const DeviceMatrix& w = matrix_of(*products[i].weight);
                if (w.type != first.type || w.cols != first.cols) break;
                if (count > 0 && rows + w.rows > kMaxFusedMmaRows) break;
                batch[count++] = {w, products[i].out.data};
                rows += w.rows;
            }
            if (has_f16_mma(first.type) && x.rows >= kMinF16MmaTokens) {
                matmul_f16_mma(batch, count, f16_copy(x), x.rows, accumulate, stream_);
                check_launch("f16 matmul");
                continue;
            }
            quantize_once(x);
            matmul_int8_mma(batch, count, quantized_values_.as<int8_t>(), quantized_scales_.as<float>(), x.rows,
                            accumulate, stream_);
            check_launch("int8 matmul");
            continue;
        }
        if (path == MatmulPath::Gemm) {
            gemm(first, x, products[i].out, accumulate);
            ++i;
            continue;
        }
        // A run of products whose weights share a type: one matrix-vector launch.
        MatvecProduct batch[kMaxFusedMatvecs];
        int count = 0;
        for (; i < products.size() && count < kMaxFusedMatvecs; ++i) {
            const DeviceMatrix& w = matrix_of(*products[i].weight);
            if (w.type != first.type) break;
            batch[count++] = {w, products[i].out.data};
        }
        if (path == MatmulPath::MatvecInt8) {
            quantize_once(x);
            matvec_int8(batch, count, quantized_values_.as<int8_t>(), quantized_scales_.as<float>(), x.rows, accumulate,
                        stream_);
        } else {
            matvec_f32(batch, count, x.data, x.rows, accumulate, stream_);
        }
        check_launch("matvec");
    }
    for (const Product& p : products) wrote(p.out);
}

// out (tokens x rows) = x (tokens x cols) times w^T, column-major as cuBLAS sees it: C (rows x
// tokens) = op(A) B with A = w as a (cols x rows) matrix, transposed.
void CudaBackend::gemm(const DeviceMatrix& w, backend::Activations x, backend::Activations out, bool accumulate) {
    const uint16_t* x16 = f16_copy(x);
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    const bool direct = w.type == type_id::F16 && w.row_stride == static_cast<size_t>(w.cols) * 2;
    const int64_t rows_per_slab =
        direct ? w.rows : std::max<int64_t>(1, static_cast<int64_t>(kDequantizedSlabBytes / (w.cols * 2)));
    if (!direct) reserve(f16_weights_, static_cast<size_t>(std::min(rows_per_slab, w.rows) * w.cols) * 2, "f16 weights");
    for (int64_t first = 0; first < w.rows; first += rows_per_slab) {
        const int64_t rows = std::min(rows_per_slab, w.rows - first);
        const void* a = w.data;
        if (!direct) {
            dequantize_to_f16(w, first, rows, f16_weights_.as<uint16_t>(), stream_);
            check_launch("dequantizing weights");
            a = f16_weights_.as();
        }
        check(cublas_library().gemm_ex(as_cublas(cublas_), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows),
                           static_cast<int>(x.rows), static_cast<int>(w.cols), &one, a, CUDA_R_16F,
                           static_cast<int>(w.cols), x16, CUDA_R_16F, static_cast<int>(x.cols), &beta,
                           out.data + first, CUDA_R_32F, static_cast<int>(w.rows), CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT),
              "GEMM");
        check_launch("GEMM (cuBLAS)");
    }
}

const int32_t* CudaBackend::device_positions(std::span<const int32_t> positions) {
    // The ops of a pass share its positions: one copy per pass (and per change, for callers that
    // run ops outside a pass).
    if (!positions_current_ ||
        !std::equal(positions.begin(), positions.end(), positions_host_.begin(), positions_host_.end())) {
        upload_small(positions, positions_pinned_, positions_, "positions");
        positions_host_.assign(positions.begin(), positions.end());
    }
    positions_current_ = true;
    return positions_.as<int32_t>();
}

void CudaBackend::use_rope(const backend::RopeParams& rope) {
    const bool same = rope.head_dim == rope_params_.head_dim && rope.rotary_dims == rope_params_.rotary_dims &&
                      rope.freq_base == rope_params_.freq_base && rope.freq_factors == rope_params_.freq_factors &&
                      inverse_frequencies_.bytes() > 0;
    if (same) return;
    std::vector<double> inverse(rope.rotary_dims / 2);
    for (int64_t i = 0; i < rope.rotary_dims / 2; ++i) inverse[i] = rope.inverse_frequency(i);
    if (mode_ != Mode::Eager) fail("CUDA: rope parameters changed while a pass was being recorded");
    check(cudaStreamSynchronize(stream_), "rope");
    inverse_frequencies_ = DeviceBuffer(std::max<size_t>(1, inverse.size()) * sizeof(double), "rope frequencies");
    check(cudaMemcpy(inverse_frequencies_.as(), inverse.data(), inverse.size() * sizeof(double), cudaMemcpyHostToDevice),
          "uploading rope frequencies");
    rope_params_ = rope;
}

void CudaBackend::rope(backend::Activations x, std::span<const int32_t> positions, const backend::RopeParams& rope) {
    const int32_t* device_pos = device_positions(positions.first(x.rows));
    if (mode_ == Mode::Replay) return;
    use_rope(rope);
    cuda::rope(x.data, x.rows, x.cols, device_pos, rope.head_dim, rope.rotary_dims,
               inverse_frequencies_.as<double>(), rope.freq_scale, stream_);
    check_launch("rope");
    wrote(x);
}

KvPages CudaBackend::device_pages(const backend::KvBatch& rows) {
    if (!rows.paged()) return {};
    // Once a pass (its tables do not change within it: no comparing them at every layer), and again
    // when ops outside a pass name other tables than the last uploaded.
    const auto same = [](std::span<const int32_t> a, const std::vector<int32_t>& b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end());
    };
    const auto other_tables = [&] {
        return !same(rows.tables, tables_host_) || !same(rows.sequence_of, sequences_host_);
    };
    if (!pages_current_ || (!in_pass_ && other_tables())) {
        upload_small(rows.tables, tables_pinned_, tables_, "block tables");
        upload_small(rows.sequence_of, sequences_pinned_, sequences_, "sequence ids");
        tables_host_.assign(rows.tables.begin(), rows.tables.end());
        sequences_host_.assign(rows.sequence_of.begin(), rows.sequence_of.end());
        pages_current_ = true;
    }
    return {tables_.as<int32_t>(), sequences_.as<int32_t>(), rows.table_stride};
}

CudaBackend::AttentionRows CudaBackend::attention_rows(const backend::KvCacheShape& shape, const backend::KvBatch& rows,
                                                       int64_t count) {
    const backend::KvBatch batch = rows.first(count);
    check_positions(shape, batch);
    return {batch, device_positions(batch.positions), device_pages(batch)};
}

void CudaBackend::attention(backend::KvCache& cache, int64_t layer, backend::Activations q, backend::Activations k,
                            backend::Activations v, const backend::KvBatch& rows, float scale,
                            backend::Activations out) {
    auto& cuda_cache = dynamic_cast<CudaKvCache&>(cache);
    const backend::KvCacheShape& shape = cuda_cache.shape();
    const AttentionRows on_device = attention_rows(shape, rows, q.rows);
    if (mode_ == Mode::Replay) return;
    store_kv(cuda_cache.rows(layer, 0), cuda_cache.rows(layer, 1), k.data, v.data, k.rows, shape.kv_heads,
             shape.head_dim, on_device.positions, on_device.pages, stream_);
    check_launch("storing keys and values");
    attend(cuda_cache, layer, q, on_device, scale, out);
}

void CudaBackend::rope_attention(backend::KvCache& cache, int64_t layer, backend::Activations q, backend::Activations k,
                                 backend::Activations v, const backend::KvBatch& rows,
                                 const backend::RopeParams& rope, float scale, backend::Activations out) {
    auto& cuda_cache = dynamic_cast<CudaKvCache&>(cache);
    const backend::KvCacheShape& shape = cuda_cache.shape();
    const AttentionRows on_device = attention_rows(shape, rows, q.rows);
    if (mode_ == Mode::Replay) return;
    use_rope(rope);
    rope_and_store_kv(cuda_cache.rows(layer, 0), cuda_cache.rows(layer, 1), q.data, k.data, v.data, q.rows,
                      q.cols / shape.head_dim, shape.kv_heads, shape.head_dim, rope.rotary_dims, on_device.positions,
                      on_device.pages, inverse_frequencies_.as<double>(), rope.freq_scale, stream_);
    check_launch("rope and storing keys and values");
    wrote(q);
    wrote(k);
    attend(cuda_cache, layer, q, on_device, scale, out);
}

void CudaBackend::attend(const CudaKvCache& cache, int64_t layer, backend::Activations q, const AttentionRows& rows,
                         float scale, backend::Activations out) {
    // Each prompt (a sequence's run of more rows than decoding takes) on its own; each stretch of
    // decoding rows between them in one launch: a pass of decoding rows only is one launch.
    const backend::KvBatch& batch = rows.batch;
    int64_t decode_first = 0, decode_count = 0;
    const auto flush_decode = [&] {
        if (decode_count > 0)
            decode_attention(cache, layer, q, decode_first, decode_count, rows.positions, rows.pages, scale, out);
        decode_count = 0;
    };
    batch.for_each_sequence([&](int64_t first, int64_t count) {
        if (count <= kMaxMatvecTokens) {
            if (decode_count == 0) decode_first = first;
            decode_count += count;
            return;
        }
        flush_decode();
        const int32_t* table =
            batch.paged() ? rows.pages.tables + static_cast<int64_t>(batch.sequence_of[first]) * batch.table_stride
                          : nullptr;
        prompt_attention(cache, layer, q, first, count, batch.positions.subspan(first, count), rows.positions + first,
                         table, scale, out);
        wrote(out);
    });
    flush_decode();
}

void CudaBackend::decode_attention(const CudaKvCache& cache, int64_t layer, backend::Activations q, int64_t first,
                                   int64_t count, const int32_t* device_pos, KvPages pages, float scale,
                                   backend::Activations out) {
    const backend::KvCacheShape& shape = cache.shape();
    const int64_t heads = q.cols / shape.head_dim;
    reserve(attention_scratch_, attention_scratch_floats(count, heads, shape.head_dim, shape.capacity) * sizeof(float),
            "attention scratch");
    // The copy for the output projection covers the whole of out: only when this launch does.
    const ActivationCopies copies = count == q.rows ? copies_for(out) : ActivationCopies{};
    cuda::attention(cache.rows(layer, 0), cache.rows(layer, 1), q.row(first), count, heads, shape.kv_heads,
                    shape.head_dim, device_pos + first, pages.from_row(first), shape.capacity, scale,
                    attention_scratch_.as<float>(), out.row(first), copies, stream_);
    check_launch("attention");
    now_copied(out, copies);
}

// Per pass over a range of query heads, two batched GEMMs with a pointer per head (a head reads
// kv head h / group, which no single stride expresses); cuBLAS sees column-major matrices:
//   scores^T (keys x rows) = K_g^T Q_h    K_g: head_dim x keys,  Q_h: head_dim x rows (f16)
//   out_h^T (head_dim x rows) = V_g P_h^T  P_h: keys x rows, the softmax written over the scores
void CudaBackend::prompt_attention(const CudaKvCache& cache, int64_t layer, backend::Activations all_q, int64_t first,
                                   int64_t rows, std::span<const int32_t> positions, const int32_t* device_positions,
                                   const int32_t* table, float scale, backend::Activations all_out) {
    const backend::KvCacheShape& shape = cache.shape();
    const KvRows keys = cache.rows(layer, 0), values = cache.rows(layer, 1);
    const backend::Activations q{all_q.row(first), rows, all_q.cols};
    float* const out = all_out.row(first);
    const int64_t head_dim = shape.head_dim, kv_heads = shape.kv_heads, heads = q.cols / head_dim;
    const int64_t group = heads / kv_heads;
    const int64_t max_keys = *std::max_element(positions.begin(), positions.end()) + 1;
    const uint16_t* q16 = f16_copy(q);
    const uint16_t *k16 = nullptr, *v16 = nullptr;
    int64_t kv_head_stride = 0;  // elements
    int kv_row = 0;
    if (keys.type == type_id::F16 && !table) {
        k16 = reinterpret_cast<const uint16_t*>(keys.base);
        v16 = reinterpret_cast<const uint16_t*>(values.base);
        kv_head_stride = static_cast<int64_t>(keys.head_stride / 2);
        kv_row = static_cast<int>(keys.row_bytes / 2);
    } else {
        // A q8_0 cache, or a sequence whose blocks are not in order: its keys and values gathered as f16.
        const size_t elements = static_cast<size_t>(kv_heads * max_keys * head_dim);
        reserve(f16_kv_, 2 * elements * 2, "f16 keys and values");
        kv_to_f16(keys, kv_heads, head_dim, max_keys, table, f16_kv_.as<uint16_t>(), stream_);
        kv_to_f16(values, kv_heads, head_dim, max_keys, table, f16_kv_.as<uint16_t>() + elements, stream_);
        check_launch("converting keys and values to f16");
        k16 = f16_kv_.as<uint16_t>();
        v16 = k16 + elements;
        kv_head_stride = max_keys * head_dim;
        kv_row = static_cast<int>(head_dim);
    }
    const int64_t stride = prompt_score_stride(max_keys);
    const int64_t per_pass = prompt_heads_per_pass(rows, heads, max_keys);
    reserve(prompt_scores_, prompt_attention_scratch_bytes(rows, heads, max_keys), "attention scores");
    reserve(attention_pointers_, static_cast<size_t>(6 * per_pass) * sizeof(void*), "attention pointers");
    void** pointers = attention_pointers_.as<void*>();
    const float one = 1.0f, zero = 0.0f;
    const int n_rows = static_cast<int>(rows), n_keys = static_cast<int>(max_keys), n_dim = static_cast<int>(head_dim);
    for (int64_t first_head = 0; first_head < heads; first_head += per_pass) {
        const int64_t count = std::min(per_pass, heads - first_head);
        const int batch = static_cast<int>(count);
        prompt_attention_pointers(k16, v16, kv_head_stride, q16, prompt_scores_.as<float>(), rows * stride, out,
                                  head_dim, first_head, count, group, pointers, stream_);
        check_launch("attention pointers");
        check(cublas_library().gemm_batched_ex(as_cublas(cublas_), CUBLAS_OP_T, CUBLAS_OP_N, n_keys, n_rows, n_dim,
                                               &one, pointers, CUDA_R_16F, kv_row, pointers + count, CUDA_R_16F,
                                               static_cast<int>(q.cols), &zero, pointers + 2 * count, CUDA_R_32F,
                                               static_cast<int>(stride), batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "attention scores");
        check_launch("attention scores (cuBLAS)");
        causal_softmax_to_f16(prompt_scores_.as<float>(), count, rows, max_keys, stride, device_positions, scale, stream_);
        check_launch("attention softmax");
        check(cublas_library().gemm_batched_ex(as_cublas(cublas_), CUBLAS_OP_N, CUBLAS_OP_N, n_dim, n_rows, n_keys,
                                               &one, pointers + 3 * count, CUDA_R_16F, kv_row, pointers + 4 * count,
                                               CUDA_R_16F, static_cast<int>(2 * stride), &zero, pointers + 5 * count,
                                               CUDA_R_32F, static_cast<int>(q.cols), batch, CUBLAS_COMPUTE_32F,
                                               CUBLAS_GEMM_DEFAULT),
              "attention output");
        check_launch("attention output (cuBLAS)");
    }
}

void CudaBackend::swiglu(backend::Activations gate, backend::Activations up) {
    if (mode_ == Mode::Replay) return;
    const ActivationCopies copies = copies_for(gate);
    if (!copies.values && !copies.f16) {
        cuda::swiglu(gate.data, up.data, gate.rows * gate.cols, stream_);
        check_launch("swiglu");
        wrote(gate);
        return;
    }
    cuda::swiglu_copied(gate.data, up.data, gate.rows * gate.cols, copies, stream_);
    check_launch("swiglu");
    now_copied(gate, copies);
}

void CudaBackend::add(backend::Activations x, backend::Activations y) {
    if (mode_ == Mode::Replay) return;
    cuda::add(x.data, y.data, x.rows * x.cols, stream_);
    check_launch("add");
    wrote(x);
}

void CudaBackend::read(backend::Activations x, float* host) {
    finish_step();
    check(cudaMemcpyAsync(host, x.data, static_cast<size_t>(x.rows * x.cols) * sizeof(float), cudaMemcpyDeviceToHost,
                          stream_),
          "reading activations");
    check(cudaStreamSynchronize(stream_), "reading activations");
    if (profile_) profile_->end_pass();
}

void CudaBackend::argmax(backend::Activations x, int32_t* host_columns, float* host_values) {
    // It runs after the pass's graph, so it may grow when the pass was being recorded. It holds the
    // columns, the values, then the slices' scratch.
    finish_step();
    reserve_after_pass(argmax_out_, static_cast<size_t>(x.rows) * 8 + argmax_scratch_bytes(x.rows), "argmax");
    auto* columns = argmax_out_.as<int32_t>();
    auto* values = reinterpret_cast<float*>(columns + x.rows);
    argmax_rows(x.data, x.rows, x.cols, values + x.rows, columns, values, stream_);
    check_launch("argmax");
    check(cudaMemcpyAsync(host_columns, columns, static_cast<size_t>(x.rows) * 4, cudaMemcpyDeviceToHost, stream_),
          "reading argmax");
    check(cudaMemcpyAsync(host_values, values, static_cast<size_t>(x.rows) * 4, cudaMemcpyDeviceToHost, stream_),
          "reading argmax");
    check(cudaStreamSynchronize(stream_), "reading argmax");
    if (profile_) profile_->end_pass();
}

void CudaBackend::top_k(backend::Activations x, int k, int32_t* host_columns, float* host_values) {
    if (k < 1 || k > std::min<int64_t>(x.cols, kMaxTopK))
        fail("CUDA: the top {} of rows of {} values (at most {})", k, x.cols, kMaxTopK);
    static_assert(kMaxTopK == backend::Backend::kMaxTopK);
    const size_t count = static_cast<size_t>(x.rows) * static_cast<size_t>(k);
    finish_step();
    reserve_after_pass(top_k_out_, count * 8, "top-k");
    auto* columns = top_k_out_.as<int32_t>();
    auto* values = reinterpret_cast<float*>(columns + count);
    top_k_rows(x.data, x.rows, x.cols, k, columns, values, stream_);
    check_launch("top-k");
    check(cudaMemcpyAsync(host_columns, columns, count * 4, cudaMemcpyDeviceToHost, stream_), "reading the top-k");
    check(cudaMemcpyAsync(host_values, values, count * 4, cudaMemcpyDeviceToHost, stream_), "reading the top-k");
    check(cudaStreamSynchronize(stream_), "reading the top-k");
    if (profile_) profile_->end_pass();
}

void CudaBackend::write(backend::Activations x, const float* host) {
    if (mode_ != Mode::Eager) fail("CUDA: activations written from the host inside a recorded pass");
    check(cudaMemcpyAsync(x.data, host, static_cast<size_t>(x.rows * x.cols) * sizeof(float), cudaMemcpyHostToDevice,
                          stream_),
          "writing activations");
    check(cudaStreamSynchronize(stream_), "writing activations");
    wrote(x);
}

double CudaBackend::measure_read_bandwidth() {
    size_t free_bytes = 0, total_bytes = 0;
    check(cudaMemGetInfo(&free_bytes, &total_bytes), "reading free memory");
    const size_t bytes = std::min<size_t>(1ull << 30, free_bytes / 4) / 16 * 16;
    DeviceBuffer data(bytes, "the bandwidth probe");
    check(cudaMemsetAsync(data.as(), 0x5a, bytes, stream_), "filling the bandwidth probe");
    reserve(probe_sink_, sizeof(float), "the bandwidth probe");
    cudaEvent_t start = nullptr, stop = nullptr;
    check(cudaEventCreate(&start), "creating events");
    check(cudaEventCreate(&stop), "creating events");
    float best_ms = 0;
    for (int run = 0; run < 8; ++run) {
        check(cudaEventRecord(start, stream_), "timing");
        read_all(data.as(), bytes, probe_sink_.as<float>(), stream_);
        check_launch("the bandwidth probe");
        check(cudaEventRecord(stop, stream_), "timing");
        check(cudaEventSynchronize(stop), "timing");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, start, stop), "timing");
        if (run > 0 && (best_ms == 0 || ms < best_ms)) best_ms = ms;  // run 0 warms up
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return static_cast<double>(bytes) / (best_ms * 1e-3);
}

}  // namespace hearth::cuda
