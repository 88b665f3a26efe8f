#!/usr/bin/env bash
# Side by side, in one run on one disk: `hearth make-test-model --preset 8b` (F16, 16 GB) against
# `dd` writing the same number of bytes with fsync, after dropping the page cache before each
# (needs root; skipped otherwise). Prints both times, their ratio and hearth's peak RSS, then
# times opening the 8B file and the tiny one (`hearth show`): open time must not grow with size.
#   bench/make_test_model_8b.sh [BUILD_DIR] [WORK_DIR]     (needs ~17 GB free in WORK_DIR)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
work=${2:-$root/models/bench}
hearth=$build/hearth
mkdir -p "$work"
trap 'rm -f "$work/8b-f16.gguf" "$work/dd.bin" "$work/tiny.gguf"' EXIT

drop_caches() { sync; [ -w /proc/sys/vm/drop_caches ] && echo 3 >/proc/sys/vm/drop_caches || true; }
seconds() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }

rm -f "$work/8b-f16.gguf" "$work/dd.bin"
drop_caches
read -r hearth_s hearth_kb < <(seconds "$hearth" make-test-model --preset 8b -o "$work/8b-f16.gguf")
bytes=$(stat -c %s "$work/8b-f16.gguf")
drop_caches
read -r dd_s _ < <(seconds dd if=/dev/zero of="$work/dd.bin" bs=4M count=$((bytes / 4194304)) conv=fsync)
rm -f "$work/dd.bin"
echo "make-test-model 8b F16: $bytes bytes in ${hearth_s} s, peak RSS $((hearth_kb / 1024)) MiB"
echo "dd, same size:            ${dd_s} s"
echo "ratio (dd time / hearth time): $(python3 -c "print(f'{$dd_s / $hearth_s:.2f}')")"

"$hearth" make-test-model --preset tiny -o "$work/tiny.gguf" 2>/dev/null
for file in "$work/tiny.gguf" "$work/8b-f16.gguf"; do
    best=999
    for _ in 1 2 3 4 5; do
        read -r s _ < <(seconds "$hearth" show "$file")
        best=$(python3 -c "print(min($best, $s))")
    done
    echo "hearth show (open + metadata) $(basename "$file") ($(stat -c %s "$file") bytes): best of 5 ${best} s"
done
