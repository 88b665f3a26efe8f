// The non-linear 4-bit grid of IQ4_NL and IQ4_XS, and llama.cpp's search for the scale of a
// block of 32 values on it.
#pragma once

#include <cstdint>

namespace hearth::quant {

// x = d * kIq4Grid[q]: 16 levels, denser near zero, ascending.
inline constexpr int8_t kIq4Grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                        1,    13,   25,  38,  53,  69,  89,  113};

// Index of the grid level nearest to x; a tie goes to the upper level.
int nearest_iq4_level(float x);

// Scale of a block of 32 values on the grid, as llama.cpp's quantizer without importance
// matrix chooses it (weights x², trial inverse scales (kIq4Grid[0] + t)/max for t = -7..7,
// best weighted least-squares fit). 0 for an all-zero block (largest magnitude < 1e-15).
float search_iq4_block_scale(const float x[32]);

// Packs 32 grid indices: byte j holds index j (low nibble) and index j + 16 (high nibble).
void pack_iq4_levels(const uint8_t levels[32], uint8_t qs[16]);

}  // namespace hearth::quant
