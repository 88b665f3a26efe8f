// What the x86-64 CPU we run on can do, asked once through CPUID. Fast paths compiled with
// __attribute__((target(...))) are chosen at run time from this, so one binary runs anywhere.
#pragma once

#include <cpuid.h>

namespace hearth {

struct CpuFeatures {
    bool avx = false;
    bool avx2 = false;
    bool f16c = false;
    bool fma = false;
    bool avx512 = false;  // F, DQ, BW and VL together (x86-64-v4)
    bool avx512_vnni = false;
};

namespace detail {

// The OS must save the wider registers on context switches (XCR0), or the instructions fault.
inline unsigned long long extended_control_register0() {
    unsigned low = 0, high = 0;
    __asm__("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return (static_cast<unsigned long long>(high) << 32) | low;
}

inline CpuFeatures detect_cpu_features() {
    CpuFeatures f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return f;
    const unsigned long long xcr0 = extended_control_register0();
    const bool ymm_saved = (xcr0 & 0x6) == 0x6;
    const bool zmm_saved = (xcr0 & 0xe6) == 0xe6;
    f.avx = ymm_saved && (c & bit_AVX);
    f.f16c = f.avx && (c & bit_F16C);
    f.fma = f.avx && (c & bit_FMA);
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2 = f.avx && (b & bit_AVX2);
        f.avx512 = zmm_saved && (b & bit_AVX512F) && (b & bit_AVX512DQ) && (b & bit_AVX512BW) && (b & bit_AVX512VL);
        f.avx512_vnni = f.avx512 && (c & bit_AVX512VNNI);
    }
    return f;
}

}  // namespace detail

inline const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detail::detect_cpu_features();
    return features;
}

}  // namespace hearth
