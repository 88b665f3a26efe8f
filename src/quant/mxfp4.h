// MXFP4 (OCP microscaling): blocks of 32 values, x = 2^(e - 127) * fp4(q) with an 8-bit
// power-of-two scale e (E8M0) and 4-bit E2M1 floats q (±0, 0.5, 1, 1.5, 2, 3, 4, 6).
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockMXFP4 {
    static constexpr int kElems = 32;
    uint8_t e;       // E8M0 scale exponent
    uint8_t qs[16];  // byte j: value j (low nibble) and value j + 16 (high nibble)
};
static_assert(sizeof(BlockMXFP4) == 17, "MXFP4 block: E8M0 exponent + 16 bytes of E2M1 values");

void dequantize_row_mxfp4(const BlockMXFP4* blocks, float* out, int64_t n);
void quantize_row_mxfp4(const float* in, BlockMXFP4* blocks, int64_t n);

}  // namespace hearth::quant
