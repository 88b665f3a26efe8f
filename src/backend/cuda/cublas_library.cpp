#include "backend/cuda/cublas_library.h"

#include <dlfcn.h>

#include <string>

#include "common/error.h"

namespace hearth::cuda {
namespace {

template <typename Function>
void resolve(void* library, const char* name, Function& function) {
    function = reinterpret_cast<Function>(dlsym(library, name));
    if (!function) fail("CUDA: libcublas has no {}: {}", name, dlerror());
}

CublasLibrary open_cublas() {
    // The soname of the toolkit this backend was compiled against, then any.
    const std::string versioned = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* library = dlopen(versioned.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) library = dlopen("libcublas.so", RTLD_NOW | RTLD_LOCAL);
    if (!library)
        fail("CUDA: cannot open {} (cuBLAS, for prompt processing on the GPU): {}. Install the CUDA toolkit's "
             "libraries or add their folder to LD_LIBRARY_PATH",
             versioned, dlerror());
    CublasLibrary l;
    resolve(library, "cublasCreate_v2", l.create);
    resolve(library, "cublasDestroy_v2", l.destroy);
    resolve(library, "cublasSetStream_v2", l.set_stream);
    resolve(library, "cublasGemmEx", l.gemm_ex);
    resolve(library, "cublasGemmBatchedEx", l.gemm_batched_ex);
    return l;  // the library stays open for the process
}

}  // namespace

const CublasLibrary& cublas_library() {
    static const CublasLibrary library = open_cublas();
    return library;
}

}  // namespace hearth::cuda
