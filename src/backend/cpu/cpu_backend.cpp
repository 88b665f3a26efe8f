#include "backend/cpu/cpu_backend.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "backend/cpu/bandwidth.h"
#include "backend/cpu/kv_cache.h"
#include "backend/cpu/ops.h"
#include "common/error.h"
#include "common/strings.h"
#include "quant/quant.h"

namespace hearth::cpu {

CpuBackend::CpuBackend(int threads, Isa isa) : pool_(threads), isa_(isa) {}

backend::Activations CpuBackend::allocate(int64_t rows, int64_t cols) {
    allocations_.push_back(std::make_unique_for_overwrite<float[]>(static_cast<size_t>(rows * cols)));
    return {allocations_.back().get(), rows, cols};
}

std::unique_ptr<backend::KvCache> CpuBackend::create_kv_cache(const backend::KvCacheShape& shape) {
    return std::make_unique<CpuKvCache>(shape);
}

bool CpuBackend::supports(quant::Type weight_type) const { return can_matmul(weight_type); }

CpuBackend::Repacked::Repacked(size_t bytes) : bytes_(bytes) {
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) fail("cannot allocate {} for repacked weights", format_bytes(bytes));
    memory_ = static_cast<uint8_t*>(memory);
}

CpuBackend::Repacked::Repacked(Repacked&& other) noexcept
    : memory_(std::exchange(other.memory_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

CpuBackend::Repacked::~Repacked() {
    if (memory_) munmap(memory_, bytes_);
}

std::vector<const backend::Weight*> CpuBackend::load_weights(std::span<const backend::Weight* const> weights) {
    std::vector<const backend::Weight*> copied;
    for (const backend::Weight* weight : weights) {
        const WeightMatrix w = matrix_of(*weight);
        const size_t bytes = cpu::repacked_bytes(w, isa_);
        if (bytes == 0 || repacked_.contains(weight->data)) continue;
        Repacked copy(bytes);
        const int64_t groups = (w.rows + kRepackRows - 1) / kRepackRows;
        pool_.run_dynamic(groups, std::max<int64_t>(1, groups / (8 * pool_.thread_count())),
                          [&](int64_t begin, int64_t end, int) { repack_weights(w, begin, end, copy.data(), isa_); });
        repacked_.emplace(weight->data, std::move(copy));
        copied.push_back(weight);
    }
    return copied;
}

uint64_t CpuBackend::repacked_bytes() const {
    uint64_t total = 0;
    for (const auto& [data, copy] : repacked_) total += copy.bytes();
    return total;
}

uint64_t CpuBackend::matmul_bytes(const backend::Weight& weight) const {
    if (const auto found = repacked_.find(weight.data); found != repacked_.end()) return found->second.bytes();
    return Backend::matmul_bytes(weight);
}

WeightMatrix CpuBackend::matrix_of(const backend::Weight& weight) const {
    WeightMatrix w{weight.type, weight.data, weight.rows, weight.cols, weight.row_bytes};
    if (const auto found = repacked_.find(weight.data); found != repacked_.end()) {
        w.data = found->second.data();
        w.layout = WeightLayout::Repacked;
    }
    return w;
}

void CpuBackend::embed(const backend::Weight& table, std::span<const int32_t> tokens, backend::Activations out) {
    pool_.run(static_cast<int64_t>(tokens.size()), [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t)
            quant::dequantize_row(table.type, table.data + tokens[t] * table.row_bytes, out.row(t), table.cols);
    });
}

void CpuBackend::rmsnorm(backend::Activations x, const backend::Weight& weight, float epsilon, backend::Activations out) {
    cpu::rmsnorm(pool_, x.data, x.rows, x.cols, reinterpret_cast<const float*>(weight.data), epsilon, out.data);
}

void CpuBackend::matmul(const backend::Weight& weight, backend::Activations x, backend::Activations out) {
    cpu::matmul(pool_, matrix_of(weight), x.data, x.rows, out.data, matmul_scratch_, isa_);
}

namespace {

bool same_rope(const backend::RopeParams& a, const backend::RopeParams& b) {
    return a.head_dim == b.head_dim && a.rotary_dims == b.rotary_dims && a.freq_base == b.freq_base &&
           a.freq_scale == b.freq_scale && a.freq_factors == b.freq_factors;
}

}  // namespace

void CpuBackend::rope(backend::Activations x, std::span<const int32_t> positions, const backend::RopeParams& rope) {
    positions = positions.first(x.rows);
    if (!same_rope(rope, rope_table_params_) ||
        !std::equal(positions.begin(), positions.end(), rope_table_positions_.begin(), rope_table_positions_.end())) {
        compute_rope_table(pool_, positions, rope, rope_table_);
        rope_table_positions_.assign(positions.begin(), positions.end());
        rope_table_params_ = rope;
    }
    apply_rope(pool_, x.data, x.rows, x.cols, rope_table_, rope);
}

void CpuBackend::attention(backend::KvCache& cache, int64_t layer, backend::Activations q, backend::Activations k,
                           backend::Activations v, const backend::KvBatch& rows, float scale,
                           backend::Activations out) {
    auto& cpu_cache = dynamic_cast<CpuKvCache&>(cache);
    const int64_t heads = q.cols / cpu_cache.shape().head_dim;
    const backend::KvBatch batch = rows.first(q.rows);
    if (flash_attention_)
        cpu::attention(pool_, cpu_cache, layer, q.data, k.data, v.data, heads, batch, scale, out.data);
    else
        cpu::attention_materialized(pool_, cpu_cache, layer, q.data, k.data, v.data, heads, batch, scale, out.data);
}

void CpuBackend::swiglu(backend::Activations gate, backend::Activations up) {
    cpu::swiglu(pool_, gate.data, up.data, gate.rows * gate.cols);
}

void CpuBackend::add(backend::Activations x, backend::Activations y) { cpu::add(pool_, x.data, y.data, x.rows * x.cols); }

void CpuBackend::read(backend::Activations x, float* host) {
    std::memcpy(host, x.data, static_cast<size_t>(x.rows * x.cols) * sizeof(float));
}

void CpuBackend::write(backend::Activations x, const float* host) {
    std::memcpy(x.data, host, static_cast<size_t>(x.rows * x.cols) * sizeof(float));
}

double CpuBackend::measure_read_bandwidth() { return cpu::measure_read_bandwidth(pool_); }

}  // namespace hearth::cpu
