// Placeholder until the block32 kernels land: no kernel, so matmul uses the generic one.
#include "backend/cpu/matmul_kernels.h"

namespace hearth::cpu::detail {

const MatmulKernel* find_block32_kernel(quant::Type, Isa) { return nullptr; }

}  // namespace hearth::cpu::detail
