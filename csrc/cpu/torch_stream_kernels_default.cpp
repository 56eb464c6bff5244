// The torch stream's CPU kernels as torch's DEFAULT capability computes them: no FMA contraction, scalar libm
// Box-Muller. See Note [The torch stream on CPU].
#define PYINIT_CPU_CAPABILITY default_capability
#include "cpu/torch_stream_kernels_per_isa.h"

namespace pyinit::cpu {

const TorchStreamKernels& torch_stream_kernels_default() {
  static const TorchStreamKernels kernels{
      &mt19937_draw,
      &default_capability::uniform_from_words</*kFma=*/false>,
      &default_capability::normal_blocks,
      &default_capability::normal_tail,
      &default_capability::normal_resample,
      /*fma=*/false,
  };
  return kernels;
}

}  // namespace pyinit::cpu
