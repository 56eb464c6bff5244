// C++ tests run by ctest: Philox4x32-10 against the Random123 known-answer vectors, and the pyinit operators
// through the dispatcher against torch's own kernels (bit for bit, generator state included).

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "pyinit/philox.h"

static int failures = 0;

#define EXPECT(cond, what)             \
  do {                                 \
    if (!(cond)) {                     \
      std::printf("FAIL: %s\n", what); \
      ++failures;                      \
    } else {                           \
      std::printf("ok:   %s\n", what); \
    }                                  \
  } while (0)

static void test_philox_kat() {
  struct Case {
    uint32_t ctr[4], key[2], expected[4];
  };
  // Random123 kat_vectors, "philox4x32 10".
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const auto& c : cases) {
    const auto out = pyinit::philox4x32_10({c.ctr[0], c.ctr[1], c.ctr[2], c.ctr[3]}, c.key[0], c.key[1]);
    const uint32_t got[4] = {out.x, out.y, out.z, out.w};
    EXPECT(std::memcmp(got, c.expected, sizeof(got)) == 0, "philox4x32-10 known-answer vector");
  }
}

static void test_op_matches_torch(const char* op_name, double a, double b) {
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow(op_name, "")
                .typed<void(at::Tensor, double, double, std::optional<at::Generator>)>();
  for (auto dtype : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    for (int64_t n : {1, 17, 1000, 100003}) {
      auto gen_torch = at::make_generator<at::CPUGeneratorImpl>(42);
      auto gen_ours = at::make_generator<at::CPUGeneratorImpl>(42);
      auto expected = at::empty({n}, at::TensorOptions().dtype(dtype));
      auto got = at::empty({n}, at::TensorOptions().dtype(dtype));
      if (std::strcmp(op_name, "pyinit::uniform_") == 0) {
        expected.uniform_(a, b, gen_torch);
      } else {
        expected.normal_(a, b, gen_torch);
      }
      op.call(got, a, b, gen_ours);
      const bool same_values = at::equal(expected, got);
      const bool same_state = at::equal(gen_torch.get_state(), gen_ours.get_state());
      char what[128];
      std::snprintf(what, sizeof(what), "%s %s n=%lld matches torch (values %d, generator %d)", op_name,
                    c10::toString(dtype), static_cast<long long>(n), same_values, same_state);
      EXPECT(same_values && same_state, what);
    }
  }
}

int main() {
  test_philox_kat();
  test_op_matches_torch("pyinit::uniform_", -2.5, 4.0);
  test_op_matches_torch("pyinit::normal_", 0.5, 2.0);
  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
