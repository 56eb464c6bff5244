// The torch stream's CPU kernels as torch's DEFAULT capability computes them: no FMA contraction, scalar libm
// Box-Muller. See Note [The torch stream on CPU].
#define PYINIT_CPU_CAPABILITY default_capability
#include "cpu/torch_stream_kernels_per_isa.h"

namespace pyinit::cpu {

const TorchStreamKernels& torch_stream_kernels_default() { return default_capability::capability_kernels(); }

}  // namespace pyinit::cpu
