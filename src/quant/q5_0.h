// Q5_0: blocks of 32 values, x = d * (q - 16) with one fp16 scale d and 5-bit q, whose low
// 4 bits are nibbles as in Q4_0 and whose 5th bits are gathered in a 32-bit mask.
#pragma once

#include <cstdint>

namespace hearth::quant {

struct BlockQ5_0 {
    static constexpr int kElems = 32;
    uint16_t d;      // fp16 scale
    uint8_t qh[4];   // little-endian 32-bit mask: bit i is the 5th bit of element i
    uint8_t qs[16];  // byte j: low 4 bits of element j (low nibble) and j + 16 (high nibble)
};
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block: fp16 scale + 4-byte high-bit mask + 16 bytes");

void dequantize_row_q5_0(const BlockQ5_0* blocks, float* out, int64_t n);
void quantize_row_q5_0(const float* in, BlockQ5_0* blocks, int64_t n);

// The 5th-bit mask of Q5_0 and Q5_1, stored little-endian whatever the host.
uint32_t load_high_bits(const uint8_t qh[4]);
void store_high_bits(uint32_t mask, uint8_t qh[4]);

// Packs 32 five-bit levels into nibbles and the high-bit mask (Q5_0 and Q5_1 share the layout).
void pack_5bit_levels(const uint8_t levels[32], uint8_t qs[16], uint8_t qh[4]);

// Level of element j + 16*half (half = 0 or 1) of a Q5 block, 0..31.
inline int q5_level(const uint8_t qs[16], uint32_t high_bits, int j, int half) {
    const int low = half == 0 ? (qs[j] & 0x0f) : (qs[j] >> 4);
    const int high = static_cast<int>((high_bits >> (j + 16 * half)) & 1);
    return low | (high << 4);
}

}  // namespace hearth::quant
