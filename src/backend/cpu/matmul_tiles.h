// Inside matmul: the one loop over weight rows and tokens that every kernel family (K-quants,
// 32-value blocks, floats) and every ISA runs; the families differ only in the tile they compute.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "backend/cpu/matmul_kernels.h"

namespace hearth::cpu::detail {

// A tile kernel: y[t * y_stride + r] for r < kRows weight rows (row r at weight_rows + r *
// row_bytes, `cols` values) and t < kTokens prepared rows (row t at prepared + t * prepared_stride).
using TileDotFn = void (*)(const uint8_t* weight_rows, size_t row_bytes, int64_t cols, const uint8_t* prepared,
                           size_t prepared_stride, float* y, int64_t y_stride);

// Computes y[t * y_stride + r] for r in [row_begin, row_end), t in [0, tokens) in tiles of
// Tiles::kRows x Tiles::kTokens. Tiles provides `template <int kRows, int kTokens> static
// constexpr TileDotFn dot` for <kRows, kTokens> (full tiles), <kRows, 1> (the tokens of a
// partial tile) and <1, 1> (the rows of a partial tile); each must give an element the same bits
// whatever tile it falls in (see MatmulKernel::rows).
//
// A slab of weight rows (slab_bytes, in whole tiles) stays in L2 while every tile of tokens
// streams past it, so a prompt reads the weights from memory once, not once per tile.
//
// Decoding (one token) is a different problem: every weight is read once, from memory, so the
// only thing that matters is keeping the memory busy. A family may provide `static constexpr
// TileDotFn decode_row` for it, used where `Tiles::decodes_by_row(cols)` says so: one row at a
// time, so each thread reads one sequential stream that the hardware prefetcher follows across
// pages (a tile of several rows reads several streams that each end at a page boundary), with
// enough accumulators to keep loads in flight. Its summation order is its own, so a token
// decoded alone may differ from the same token in a batch by rounding; every element is still
// the same whatever the thread count or row range.
template <class Tiles>
inline void for_each_tile(const WeightMatrix& w, const uint8_t* prepared, size_t prepared_stride, int64_t tokens,
                          int64_t row_begin, int64_t row_end, float* y, int64_t y_stride, size_t slab_bytes) {
    if constexpr (requires { Tiles::decode_row; }) {
        if (tokens == 1 && Tiles::decodes_by_row(w.cols)) {
            for (int64_t r = row_begin; r < row_end; ++r)
                Tiles::decode_row(w.data + r * w.row_bytes, w.row_bytes, w.cols, prepared, prepared_stride, y + r,
                                  y_stride);
            return;
        }
    }
    constexpr int kRows = Tiles::kRows;
    constexpr int kTokens = Tiles::kTokens;
    const int64_t slab_rows =
        std::max<int64_t>(kRows, static_cast<int64_t>(slab_bytes / std::max<size_t>(1, w.row_bytes)) / kRows * kRows);
    for (int64_t slab_begin = row_begin; slab_begin < row_end; slab_begin += slab_rows) {
        const int64_t slab_end = std::min(row_end, slab_begin + slab_rows);
        for (int64_t t = 0; t < tokens; t += kTokens) {
            const bool full_tokens = t + kTokens <= tokens;
            const uint8_t* x = prepared + t * prepared_stride;
            for (int64_t r = slab_begin; r < slab_end; r += kRows) {
                const uint8_t* weights = w.data + r * w.row_bytes;
                float* out = y + t * y_stride + r;
                const bool full_rows = r + kRows <= slab_end;
                if (full_rows && full_tokens) {
                    Tiles::template dot<kRows, kTokens>(weights, w.row_bytes, w.cols, x, prepared_stride, out,
                                                        y_stride);
                    continue;
                }
                const int64_t tile_tokens = std::min<int64_t>(kTokens, tokens - t);
                for (int64_t tt = 0; tt < tile_tokens; ++tt) {
                    const uint8_t* xt = x + tt * prepared_stride;
                    if (full_rows) {
                        Tiles::template dot<kRows, 1>(weights, w.row_bytes, w.cols, xt, prepared_stride,
                                                      out + tt * y_stride, y_stride);
                        continue;
                    }
                    for (int64_t rr = 0; rr < slab_end - r; ++rr) {
                        Tiles::template dot<1, 1>(weights + rr * w.row_bytes, w.row_bytes, w.cols, xt,
                                                  prepared_stride, out + tt * y_stride + rr, y_stride);
                    }
                }
            }
        }
    }
}

}  // namespace hearth::cpu::detail
