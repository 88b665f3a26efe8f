// The CPU backend: backend::Backend's ops on x86-64, weights read in place from the mmap, rows
// split across a low-latency thread pool, the widest ISA the CPU has chosen at run time.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/thread_pool.h"

namespace hearth::cpu {

class CpuBackend final : public backend::Backend {
  public:
    explicit CpuBackend(int threads, Isa isa = best_isa());

    std::string_view name() const override { return "cpu"; }
    int threads() const { return pool_.thread_count(); }
    Isa isa() const { return isa_; }

    backend::Activations allocate(int64_t rows, int64_t cols) override;
    std::unique_ptr<backend::KvCache> create_kv_cache(const backend::KvCacheShape& shape) override;
    bool supports(quant::Type weight_type) const override;

    void embed(const backend::Weight& table, std::span<const int32_t> tokens, backend::Activations out) override;
    void rmsnorm(backend::Activations x, const backend::Weight& weight, float epsilon, backend::Activations out) override;
    void matmul(const backend::Weight& weight, backend::Activations x, backend::Activations out) override;
    void rope(backend::Activations x, std::span<const int32_t> positions, const backend::RopeParams& rope) override;
    void attention(backend::KvCache& cache, int64_t layer, backend::Activations q, backend::Activations k,
                   backend::Activations v, std::span<const int32_t> positions, float scale,
                   backend::Activations out) override;
    void swiglu(backend::Activations gate, backend::Activations up) override;
    void add(backend::Activations x, backend::Activations y) override;
    void read(backend::Activations x, float* host) override;

  private:
    ThreadPool pool_;
    Isa isa_;
    std::vector<uint8_t> matmul_scratch_;
    // The angles of the last rope call: q and k of every layer of a forward pass share them.
    RopeTable rope_table_;
    std::vector<int32_t> rope_table_positions_;
    backend::RopeParams rope_table_params_;
    std::vector<std::unique_ptr<float[]>> allocations_;
};

}  // namespace hearth::cpu
