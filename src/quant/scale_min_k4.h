// What Q4_K and Q5_K share: 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min
// (x = d*scale*q - dmin*min), the 16 six-bit numbers packed in 12 bytes:
//   bytes 0-3:  scales 0-3 (low 6 bits); top 2 bits carry the high bits of scales 4-7
//   bytes 4-7:  mins 0-3 (low 6 bits);   top 2 bits carry the high bits of mins 4-7
//   bytes 8-11: low 4 bits of scale 4-7 | low 4 bits of min 4-7 << 4
#pragma once

#include <cstdint>

#include "quant/scale_search.h"

namespace hearth::quant {

constexpr int kScaleMinBytes = 12;

struct ScaleMin {
    uint8_t scale;
    uint8_t min;
};

inline ScaleMin unpack_scale_min_k4(const uint8_t packed[kScaleMinBytes], int sub_block) {
    const int j = sub_block;
    if (j < 4) return {static_cast<uint8_t>(packed[j] & 63), static_cast<uint8_t>(packed[j + 4] & 63)};
    return {static_cast<uint8_t>((packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4)),
            static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4))};
}

void pack_scales_mins_k4(const uint8_t scales[8], const uint8_t mins[8], uint8_t packed[kScaleMinBytes]);

// The super-block header of Q4_K and Q5_K.
struct ScaleMinHeader {
    uint16_t d;                      // fp16 scale of the 6-bit scales
    uint16_t dmin;                   // fp16 scale of the 6-bit mins
    uint8_t scales[kScaleMinBytes];  // packed as above
};

// llama.cpp's reference quantization of a Q4_K/Q5_K super-block of 256 values (no importance
// matrix): per sub-block an affine search with weights rms(x) + |x|, 6-bit scales and mins
// relative to the largest of each, then every value re-rounded against the stored scale and
// min. Writes the header and the 256 levels (0..search.nmax).
void quantize_scale_min_super_block(const float* x, const AffineSearch& search, ScaleMinHeader* header,
                                    uint8_t levels[256]);

}  // namespace hearth::quant
