#pragma once
// Macros shared by the CPU and CUDA sources. Nothing here may include torch headers: the CUDA kernel files
// are compiled by plain nvcc in CI (see Note [CUDA kernels without torch headers]).

#if defined(__CUDACC__) || defined(__HIPCC__)
#define PYINIT_HOST_DEVICE __host__ __device__
#else
#define PYINIT_HOST_DEVICE
#endif

#define PYINIT_INLINE PYINIT_HOST_DEVICE inline
