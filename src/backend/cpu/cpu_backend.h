// The CPU backend: backend::Backend's ops on x86-64, weights read in place from the mmap (or
// repacked once at load where a kernel wants another layout), rows split across a low-latency
// thread pool, the widest ISA the CPU has chosen at run time.
#pragma once

#include <memory>
#include <unordered_map>
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
    // Repacks every weight whose type has a repacked kernel on this ISA (repack_weights) into
    // anonymous memory.
    std::vector<const backend::Weight*> load_weights(std::span<const backend::Weight* const> weights) override;
    // Bytes of those copies.
    uint64_t repacked_bytes() const;
    uint64_t matmul_bytes(const backend::Weight& weight) const override;

    void embed(const backend::Weight& table, std::span<const int32_t> tokens, backend::Activations out) override;
    void rmsnorm(backend::Activations x, const backend::Weight& weight, float epsilon, backend::Activations out) override;
    void matmul(const backend::Weight& weight, backend::Activations x, backend::Activations out) override;
    void rope(backend::Activations x, std::span<const int32_t> positions, const backend::RopeParams& rope) override;
    void attention(backend::KvCache& cache, int64_t layer, backend::Activations q, backend::Activations k,
                   backend::Activations v, const backend::KvBatch& rows, float scale,
                   backend::Activations out) override;
    void swiglu(backend::Activations gate, backend::Activations up) override;
    void add(backend::Activations x, backend::Activations y) override;
    void read(backend::Activations x, float* host) override;
    void write(backend::Activations x, const float* host) override;
    double measure_read_bandwidth() override;
    bool use_flash_attention(bool on) override {
        flash_attention_ = on;
        return true;
    }

  private:
    // Weights as the kernels read them: repacked where load_weights made a copy, else in place.
    WeightMatrix matrix_of(const backend::Weight& weight) const;

    // Anonymous memory holding one repacked weight.
    class Repacked {
      public:
        explicit Repacked(size_t bytes);
        Repacked(Repacked&& other) noexcept;
        Repacked(const Repacked&) = delete;
        Repacked& operator=(const Repacked&) = delete;
        Repacked& operator=(Repacked&&) = delete;
        ~Repacked();
        uint8_t* data() const { return memory_; }
        size_t bytes() const { return bytes_; }

      private:
        uint8_t* memory_ = nullptr;
        size_t bytes_ = 0;
    };

    ThreadPool pool_;
    Isa isa_;
    bool flash_attention_ = true;
    std::vector<uint8_t> matmul_scratch_;
    // The angles of the last rope call: q and k of every layer of a forward pass share them.
    RopeTable rope_table_;
    std::vector<int32_t> rope_table_positions_;
    backend::RopeParams rope_table_params_;
    std::vector<std::unique_ptr<float[]>> allocations_;
    // Keyed by the weight's data pointer in the file.
    std::unordered_map<const uint8_t*, Repacked> repacked_;
};

}  // namespace hearth::cpu
