#!/usr/bin/env bash
# Installs every Debian package hearth's build and tests need (only those missing), then
# configures and builds. Idempotent: a second run installs nothing and rebuilds what changed.
#   scripts/setup.sh            release build in build/release (tests and benchmarks included)
#   scripts/setup.sh debug      ASan + UBSan build in build/debug
#   scripts/setup.sh fuzz       libFuzzer targets in build/fuzz (clang)
set -euo pipefail
preset="${1:-release}"
cd "$(dirname "$0")/.."

packages=(
    cmake ninja-build g++ make pkg-config ccache git ca-certificates
    nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev zlib1g-dev
    libpcre2-dev libutf8proc-dev      # Unicode classes for pre-tokenizers
    libedit-dev                       # line editing in `hearth run`
    libcpp-httplib-dev                # the HTTP client of `hearth bench --server`
    libgtest-dev libgmock-dev libbenchmark-dev
    clang libclang-rt-dev            # libFuzzer and sanitizer runtimes
    python3 python3-numpy python3-jinja2   # reference computations in tests
)
command -v node >/dev/null 2>&1 || packages+=(nodejs)   # llama.cpp (node-llama-cpp) cross-checks
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Independent references for tests (tests/compat/package.json): llama.cpp's prebuilt CPU build
# through node-llama-cpp (83 MB, no GPU builds), Hugging Face tokenizers, real tokenizer configs.
stamp=tests/compat/node_modules/.hearth-installed-lock.json
if [ "$preset" = release ] && ! cmp -s tests/compat/package-lock.json "$stamp"; then
    (cd tests/compat && npm ci --omit=optional --no-audit --no-fund --loglevel=error)
    cp tests/compat/package-lock.json "$stamp"
fi

cmake --preset "$preset"
cmake --build --preset "$preset"
