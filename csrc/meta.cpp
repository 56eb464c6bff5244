// The Meta kernel of every pyinit operator: meta tensors (torch.device("meta"), deferred()) and, through the Meta
// key, the fake tensors of torch.compile and opcheck.
//
// Note [Meta kernels do what torch's meta in-place ops do]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A meta tensor has no data, so nothing is written or drawn, but torch's in-place ops on one still check what does
// not depend on data and still announce the write: `torch.empty(3, device="meta").normal_(0, -1)` raises "normal
// expects std >= 0.0, but found std -1.0", `.uniform_(1, 0)` does not raise (torch's meta uniform_ checks no
// bounds), and each moves the version counter by one (ADInplaceOrView), an empty tensor's too. So does this one
// kernel for every pyinit operator (boxed: it reads the schema): the dtype check of the operator's CPU kernel, the
// `std` check of the normal family (with the message of torch's, which is Python), then one version bump per
// written tensor. No shape-dependent check runs here, so that symbolic shapes under torch.compile need no guard. It
// replaces the no-op fake that torch.library's register_fake would install behind the Meta key (which moved no
// version counter).

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <charconv>
#include <cmath>
#include <string>

#include "validate.h"

namespace pyinit {
namespace {

// `value` as Python's repr(float) writes it (the shortest digits that round-trip; positional notation for decimal
// exponents -4 to 15, with ".0" for a whole number; else d.ddde+XX): torch's meta normal_ check is Python
// (torch._refs), so its message says "found std -1.0" where the CPU kernel's says "found std -1".
std::string python_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  char buffer[64];
  const auto end = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific).ptr;
  const std::string scientific(buffer, end);  // [-]d[.ddd]e(+|-)XX
  const size_t e = scientific.find('e');
  const int exponent = std::stoi(scientific.substr(e + 1));
  const bool negative = scientific[0] == '-';
  std::string digits;
  for (size_t i = negative ? 1 : 0; i < e; ++i) {
    if (scientific[i] != '.') digits += scientific[i];
  }
  const std::string sign = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    std::string out = sign + digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + "e";
    out += exponent < 0 ? "-" : "+";
    const std::string magnitude = std::to_string(std::abs(exponent));
    return out + (magnitude.size() < 2 ? "0" : "") + magnitude;
  }
  if (exponent < 0) return sign + "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  const size_t whole = static_cast<size_t>(exponent) + 1;
  if (digits.size() <= whole) return sign + digits + std::string(whole - digits.size(), '0') + ".0";
  return sign + digits.substr(0, whole) + "." + digits.substr(whole);
}

// torch._refs.normal's check.
void check_meta_std(double std) {
  TORCH_CHECK(std >= 0.0, "normal expects std >= 0.0, but found std ", python_repr(std));
}

}  // namespace

void meta_kernel(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const auto& schema = op.schema();
  const auto& arguments = schema.arguments();
  const std::string name = schema.name().substr(schema.name().find("::") + 2);
  auto values = torch::jit::last(*stack, arguments.size());
  bool values_written = true;  // philox_sparse_ with std=None writes only zeros, in any dtype
  // trunc_normal_uniform_'s std only divides (torch's uniform-proposal branch draws uniform_ and never checks it).
  const bool std_checked = name != "trunc_normal_uniform_";
  for (size_t i = 0; i < arguments.size(); ++i) {
    if (arguments[i].name() != "std" || !std_checked) continue;
    const c10::IValue& std = values[i];
    if (std.isDouble()) {
      check_meta_std(std.toDouble());
    } else if (std.isDoubleList()) {
      for (const double s : std.toDoubleVector()) check_meta_std(s);
    } else if (std.isNone()) {
      values_written = false;
    }
  }
  std::vector<at::Tensor> written;
  if (values[0].isTensor()) {
    written.push_back(values[0].toTensor());
  } else {
    written = values[0].toTensorVector();
  }
  for (const at::Tensor& self : written) {
    if (name == "philox_bits_") {
      validate_philox_bits(self);
    } else if (values_written) {
      check_floating(self, name.c_str());
    }
  }
  for (const at::Tensor& self : written) self.unsafeGetTensorImpl()->bump_version();
  torch::jit::drop(*stack, arguments.size());
}

}  // namespace pyinit
