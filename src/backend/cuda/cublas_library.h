// cuBLAS, opened at run time: the prompt GEMMs need it, but linking it would load its ~700 MB of
// libraries (and ~150 MB of relocated pages) into every hearth process, CPU runs included. The
// CUDA backend opens it when it starts; without it, it says which library is missing.
#pragma once

#include <cublas_v2.h>

namespace hearth::cuda {

struct CublasLibrary {
    cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
    cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                              const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
    cublasStatus_t (*gemm_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                      const void* const[], cudaDataType, int, const void* const[], cudaDataType, int,
                                      const void*, void* const[], cudaDataType, int, int, cublasComputeType_t,
                                      cublasGemmAlgo_t) = nullptr;
};

// Opens libcublas once per process. Throws hearth::Error naming the library when it is missing.
const CublasLibrary& cublas_library();

}  // namespace hearth::cuda
