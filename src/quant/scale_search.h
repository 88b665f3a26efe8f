// The searches by which llama.cpp's K-quants choose a scale (and min) for a group of values:
// each tries a handful of trial scales around amax/nmax and keeps the one with the least
// weighted squared (or absolute) error. Reproduced step for step, in the same float order, so
// that the chosen levels match llama.cpp's bytes.
#pragma once

#include <cstdint>

namespace hearth::quant {

// Symmetric levels -nmax..nmax-1 for x[0..n), stored as level + nmax in `levels`, with
// weights x² (ggml's make_qx_quants with rmse_type 1 and no importance). Tries scales
// -(nmax + 0.1 k)/max for k = -9..9 and keeps the best least-squares fit. Returns the scale
// (negative when the largest-magnitude value is positive). All-zero groups (amax < 1e-15) get
// scale 0 and levels 0.
float make_qx_quants(int n, int nmax, const float* x, int8_t* levels);

// Symmetric levels for Q3_K (ggml's make_q3_quants with do_rmse): start from -nmax/max and
// improve one level at a time (up to 5 passes) while the weighted (x²) least-squares error
// drops. Levels stored as level + nmax; returns the least-squares scale.
float make_q3_quants(int n, int nmax, const float* x, int8_t* levels);

// How make_qkx2_quants searches: trial inverse scales (rmin + rdelta*k + nmax)/(max - min) for
// k = 0..nstep, measuring absolute error (use_mad) or squared error.
struct AffineSearch {
    int nmax;
    float rmin;
    float rdelta;
    int nstep;
    bool use_mad;
};

// Affine levels 0..nmax for x[0..n) such that x ≈ scale*level - min_offset (ggml's
// make_qkx2_quants). Returns the scale and writes -min (>= 0) to `minus_min`; `scratch`
// holds n bytes of trial levels.
float make_qkx2_quants(int n, const float* x, const float* weights, const AffineSearch& search,
                       uint8_t* levels, float* minus_min, uint8_t* scratch);

}  // namespace hearth::quant
