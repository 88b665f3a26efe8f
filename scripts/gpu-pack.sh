#!/usr/bin/env bash
# Builds hearth and the CUDA tests for Hopper (sm_90) here, and packs them with the shared
# libraries the GPU machine's image lacks (it has the CUDA toolkit and driver, but none of the
# Debian packages hearth links), into build/gpu-pack, and that folder compressed into
# build/gpu-pack.tgz (a third of its size: what is carried to the GPU machine). There:
#   scripts/gpu-pack.sh            then, on the GPU machine: tar xzf build/gpu-pack.tgz -C build &&
#                                  scripts/gpu-bench.sh "$OUT"
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DHEARTH_BENCH=OFF >/dev/null
cmake --build build/gpu --target hearth cuda_tests cuda_matvec_bench cuda_launch_bench cuda_attention_bench cuda_step_stream_bench
pack=build/gpu-pack
rm -rf "$pack"
mkdir -p "$pack/lib"
cp build/gpu/hearth build/gpu/tests/cuda_tests build/gpu/bench/cuda/cuda_matvec_bench build/gpu/bench/cuda/cuda_launch_bench build/gpu/bench/cuda/cuda_attention_bench build/gpu/bench/cuda/cuda_step_stream_bench "$pack/"
# Every library the binaries load but those of glibc, the C++ runtime and CUDA, which the image has.
for binary in "$pack/hearth" "$pack/cuda_tests"; do
    ldd "$binary" | awk '/=> \// {print $3}' | while read -r lib; do
        case "$(basename "$lib")" in
            libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libstdc++* | libgcc_s* | \
                libcublas* | libcudart* | libcuda.so*) ;;
            *) cp -L -n "$lib" "$pack/lib/" ;;
        esac
    done
done
tar czf "$pack.tgz" -C build gpu-pack
du -sh "$pack" "$pack.tgz"
