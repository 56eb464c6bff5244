// pyinit._C: the Python module. Importing it loads this library, whose static initializers (csrc/ops.cpp) register
// the torch.ops.pyinit operators. It also holds the two calls that make small initializer calls cheap from Python
// (Note [The direct operator call]). Built by setup.py only: the CMake build (libpyinit_ops.so, ctest) has no
// Python.
//
// Note [The direct operator call]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// `with torch.no_grad(): torch.ops.pyinit.uniform_(t, a, b, g)` costs about 5 us of Python before the kernel starts
// (the context manager, the OpOverloadPacket, the argument parser), more than torch.nn.init's whole call on a small
// tensor. `_C.call(op, *args)` does the same thing from C++: the same operator through the same dispatcher (so
// dispatch modes, profilers and the version counter see exactly what torch.ops would give them), with grad mode off
// (as torch.no_grad), the GIL released during the kernel (as torch.ops), and C++ errors and warnings translated as
// torch.ops translates them. It handles only the plain case, and returns False without doing anything otherwise, so
// that the caller takes the torch.ops path and gets torch's own behaviour (argument errors included):
//   - `self` is a torch.Tensor or Parameter (exact types), strided, a floating dtype, on a device the operator has
//     a kernel for, with no Python, functorch or functionalization dispatch key;
//   - every argument has exactly the schema's type (float, int, bool, Generator or None, list of ints), and
//     omitted trailing arguments have defaults.
// The caller checks the rest (torch.compile is not tracing, no TorchFunctionMode: pyinit/_ops.py direct_call).
//
// `_C.philox_call(op, generator, self, *params)` is `call` for a philox operator whose (key, offset) it draws from a
// CPU generator as pyinit/_streams.py draw_key does (the same words, the same generator state after), once every
// check has passed, and gives back if the operator raises. `_C.philox_key(generator)` is that draw alone.

#include <Python.h>
#include "python/module.h"
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/utils/pybind.h>
#include <torch/csrc/Generator.h>
#include <torch/csrc/autograd/python_variable.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/GradMode.h>

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "philox_key.h"

// Test hooks (tests/test_mt_jump.py), defined in csrc/cpu/torch_stream_cpu.cpp.
namespace pyinit::cpu {
std::atomic<int64_t>& torch_stream_jump_min_words();
std::atomic<int64_t>& torch_stream_jump_cost_words();
std::atomic<int64_t>& torch_stream_jump_min_threads();
bool mt19937_advance_matches_draw(uint64_t seed, int64_t start, int64_t count, double* advance_us, double* draw_us);
}  // namespace pyinit::cpu

namespace pyinit::python {

PyTypeObject* parameter_type = nullptr;

bool is_plain_tensor(PyObject* obj) {
  return THPVariable_CheckExact(obj) || (parameter_type != nullptr && Py_TYPE(obj) == parameter_type);
}

}  // namespace pyinit::python

namespace {

using pyinit::python::is_plain_tensor;
using pyinit::python::parameter_type;

// _set_torch_stream_jump(min_words, cost_words, min_threads) -> the previous triple: the size and thread count
// from which the CPU torch stream draws in parallel by jump-ahead, and the cost of a jump its range split assumes
// (csrc/cpu/torch_stream_jump.h).
PyObject* set_torch_stream_jump(PyObject*, PyObject* args) {
  long long min_words = 0, cost_words = 0, min_threads = 0;
  if (!PyArg_ParseTuple(args, "LLL", &min_words, &cost_words, &min_threads)) return nullptr;
  const long long previous_min = pyinit::cpu::torch_stream_jump_min_words().exchange(min_words);
  const long long previous_cost = pyinit::cpu::torch_stream_jump_cost_words().exchange(cost_words);
  const long long previous_threads = pyinit::cpu::torch_stream_jump_min_threads().exchange(min_threads);
  return Py_BuildValue("(LLL)", previous_min, previous_cost, previous_threads);
}

// _mt19937_advance_check(seed, start, count) -> (equal, advance_us, draw_us): from at::mt19937(seed) advanced by
// `start` words, whether the jump-ahead by `count` words leaves the engine exactly as drawing them does, and the
// time the jump and the bulk draw of those words took.
PyObject* mt19937_advance_check(PyObject*, PyObject* args) {
  unsigned long long seed = 0;
  long long start = 0, count = 0;
  if (!PyArg_ParseTuple(args, "KLL", &seed, &start, &count)) return nullptr;
  if (start < 0 || count < 0) {
    PyErr_SetString(PyExc_ValueError, "start and count must be >= 0");
    return nullptr;
  }
  double advance_us = 0, draw_us = 0;
  bool equal = false;
  Py_BEGIN_ALLOW_THREADS equal = pyinit::cpu::mt19937_advance_matches_draw(seed, start, count, &advance_us, &draw_us);
  Py_END_ALLOW_THREADS return Py_BuildValue("(Odd)", equal ? Py_True : Py_False, advance_us, draw_us);
}

using pyinit::python::kSlowPathKeys;

bool runs_here(const c10::OperatorHandle& op, const at::Tensor& self) {
  if (!self.defined() || self.layout() != c10::kStrided || !at::isFloatingType(self.scalar_type()) ||
      self.key_set().has_any(kSlowPathKeys)) {
    return false;
  }
  c10::DispatchKey key;
  switch (self.device().type()) {
    case c10::DeviceType::CPU: key = c10::DispatchKey::CPU; break;
    case c10::DeviceType::CUDA: key = c10::DispatchKey::CUDA; break;
    default: return false;
  }
  return op.hasKernelForDispatchKey(key) || op.hasKernelForDispatchKey(c10::DispatchKey::CompositeExplicitAutograd);
}

// Converts `obj` to the schema type of `arg`; false when it is not exactly that type.
// An exact Python int that fits in int64 (torch.ops refuses the others, or converts them its own way: the caller then
// leaves the call to torch.ops).
bool exact_int64(PyObject* obj, int64_t* value) {
  if (!PyLong_CheckExact(obj)) return false;
  int overflow = 0;
  const long long parsed = PyLong_AsLongLongAndOverflow(obj, &overflow);
  if (overflow != 0 || (parsed == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    return false;
  }
  *value = static_cast<int64_t>(parsed);
  return true;
}

bool push_argument(const c10::Argument& arg, PyObject* obj, torch::jit::Stack& stack) {
  const c10::TypePtr& type = arg.type();
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      if (!is_plain_tensor(obj)) return false;
      stack.emplace_back(THPVariable_Unpack(obj));
      return true;
    case c10::TypeKind::FloatType:
      if (PyFloat_CheckExact(obj)) {
        stack.emplace_back(PyFloat_AS_DOUBLE(obj));
        return true;
      }
      if (PyLong_CheckExact(obj)) {  // as torch.ops converts an int given for a float
        const double value = PyLong_AsDouble(obj);
        if (value == -1.0 && PyErr_Occurred()) {
          PyErr_Clear();
          return false;
        }
        stack.emplace_back(value);
        return true;
      }
      return false;
    case c10::TypeKind::IntType: {
      int64_t value = 0;
      if (!exact_int64(obj, &value)) return false;
      stack.emplace_back(value);
      return true;
    }
    case c10::TypeKind::BoolType:
      if (PyBool_Check(obj)) {
        stack.emplace_back(obj == Py_True);
        return true;
      }
      return false;
    case c10::TypeKind::OptionalType: {
      if (obj == Py_None) {
        stack.emplace_back();
        return true;
      }
      const auto element = type->castRaw<c10::OptionalType>()->getElementType();
      if (element->kind() == c10::TypeKind::GeneratorType && THPGenerator_Check(obj)) {
        stack.emplace_back(reinterpret_cast<THPGenerator*>(obj)->cdata);
        return true;
      }
      if (element->kind() == c10::TypeKind::FloatType && PyFloat_CheckExact(obj)) {
        stack.emplace_back(PyFloat_AS_DOUBLE(obj));
        return true;
      }
      return false;
    }
    case c10::TypeKind::ListType: {
      const auto element = type->castRaw<c10::ListType>()->getElementType();
      if (element->kind() != c10::TypeKind::IntType || !(PyList_CheckExact(obj) || PyTuple_CheckExact(obj))) {
        return false;
      }
      const Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
      PyObject** items = PySequence_Fast_ITEMS(obj);
      std::vector<int64_t> values(static_cast<size_t>(n));
      for (Py_ssize_t i = 0; i < n; ++i) {
        if (!exact_int64(items[i], &values[i])) return false;
      }
      stack.emplace_back(std::move(values));
      return true;
    }
    default: return false;
  }
}

void destroy_handle(PyObject* capsule) {
  delete static_cast<c10::OperatorHandle*>(PyCapsule_GetPointer(capsule, "pyinit.operator"));
}

// operator("pyinit::uniform_") -> a capsule holding the operator's handle.
PyObject* operator_handle(PyObject* /*self*/, PyObject* name) {
  HANDLE_TH_ERRORS
  if (!PyUnicode_Check(name)) {
    PyErr_SetString(PyExc_TypeError, "operator(name): name must be a str");
    return nullptr;
  }
  const auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(PyUnicode_AsUTF8(name), "");
  return PyCapsule_New(new c10::OperatorHandle(handle), "pyinit.operator", destroy_handle);
  END_HANDLE_TH_ERRORS
}

c10::OperatorHandle* handle_of(PyObject* capsule) {
  return static_cast<c10::OperatorHandle*>(PyCapsule_GetPointer(capsule, "pyinit.operator"));
}

// Pushes `given` arguments for the schema's first arguments; false if one is not exactly its type.
bool push_given(const c10::OperatorHandle& op, PyObject* const* args, size_t given, torch::jit::Stack& stack) {
  const auto& arguments = op.schema().arguments();
  if (stack.size() + given > arguments.size()) return false;
  for (size_t i = 0; i < given; ++i) {
    if (!push_argument(arguments[stack.size()], args[i], stack)) return false;
  }
  return true;
}

// Pushes the defaults of the schema's remaining arguments; false if one has none.
bool push_defaults(const c10::OperatorHandle& op, torch::jit::Stack& stack) {
  const auto& arguments = op.schema().arguments();
  for (size_t i = stack.size(); i < arguments.size(); ++i) {
    if (!arguments[i].default_value().has_value()) return false;
    stack.push_back(*arguments[i].default_value());
  }
  return true;
}

void run(const c10::OperatorHandle& op, torch::jit::Stack& stack) {
  pybind11::gil_scoped_release no_gil;
  c10::AutoGradMode no_grad(false);
  op.callBoxed(stack);
}

// The CPU generator a philox key is drawn from (None: the default CPU generator), in `holder`; false for anything
// else.
bool key_generator(PyObject* generator, at::Generator& holder) {
  if (generator == Py_None) {
    holder = at::detail::getDefaultCPUGenerator();
  } else if (THPGenerator_Check(generator)) {
    holder = reinterpret_cast<THPGenerator*>(generator)->cdata;
  } else {
    return false;
  }
  return holder.device().type() == c10::DeviceType::CPU;
}

// call(handle, *args) -> True after running the operator, False when it did not (see the Note).
PyObject* call(PyObject* /*self*/, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (nargs < 2) Py_RETURN_FALSE;
  auto* op = handle_of(args[0]);
  if (op == nullptr) return nullptr;
  torch::jit::Stack stack;
  stack.reserve(op->schema().arguments().size());
  if (!push_given(*op, args + 1, static_cast<size_t>(nargs - 1), stack) || !push_defaults(*op, stack) ||
      !runs_here(*op, stack[0].toTensor())) {
    Py_RETURN_FALSE;
  }
  run(*op, stack);
  Py_RETURN_TRUE;
  END_HANDLE_TH_ERRORS
}

// philox_call(handle, generator, self, *params) -> bool: a philox operator (schema: self, params..., int key,
// int offset, defaults...) with its (key, offset) drawn from the CPU generator as draw_key draws it, after every
// check passed; if the operator raises, the generator is put back. False, with nothing drawn, when call() would
// refuse or the generator is not a CPU generator (or None).
PyObject* philox_call(PyObject* /*self*/, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (nargs < 3) Py_RETURN_FALSE;
  auto* op = handle_of(args[0]);
  if (op == nullptr) return nullptr;
  at::Generator holder;
  if (!key_generator(args[1], holder)) Py_RETURN_FALSE;
  const auto& arguments = op->schema().arguments();
  torch::jit::Stack stack;
  stack.reserve(arguments.size());
  if (!push_given(*op, args + 2, static_cast<size_t>(nargs - 2), stack)) Py_RETURN_FALSE;
  const size_t at = stack.size();
  if (at + 2 > arguments.size() || arguments[at].type()->kind() != c10::TypeKind::IntType ||
      arguments[at + 1].type()->kind() != c10::TypeKind::IntType || !runs_here(*op, stack[0].toTensor())) {
    Py_RETURN_FALSE;
  }
  stack.emplace_back(int64_t{0});
  stack.emplace_back(int64_t{0});
  if (!push_defaults(*op, stack)) Py_RETURN_FALSE;
  pyinit::with_drawn_key(holder, [&](int64_t key, int64_t offset) {
    stack[at] = key;
    stack[at + 1] = offset;
    run(*op, stack);
  });
  Py_RETURN_TRUE;
  END_HANDLE_TH_ERRORS
}

// set_parameter_type(torch.nn.Parameter): the one tensor subclass call() takes as a plain tensor.
PyObject* set_parameter_type(PyObject* /*self*/, PyObject* type) {
  if (!PyType_Check(type)) {
    PyErr_SetString(PyExc_TypeError, "set_parameter_type: expected a type");
    return nullptr;
  }
  Py_INCREF(type);
  parameter_type = reinterpret_cast<PyTypeObject*>(type);
  Py_RETURN_NONE;
}

// philox_key(generator or None) -> (key, offset): draw_key for a CPU generator (None: the default CPU
// generator), without torch.randint; None for any other generator.
PyObject* philox_key(PyObject* /*self*/, PyObject* generator) {
  HANDLE_TH_ERRORS
  at::Generator holder;
  if (!key_generator(generator, holder)) Py_RETURN_NONE;
  const pyinit::PhiloxKeyDraw draw(holder);
  return Py_BuildValue("(KK)", static_cast<unsigned long long>(draw.key), static_cast<unsigned long long>(draw.offset));
  END_HANDLE_TH_ERRORS
}

PyMethodDef methods[] = {
    {"operator", operator_handle, METH_O, "operator(name) -> handle for call()"},
    {"call", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(call)), METH_FASTCALL,
     "call(handle, *args) -> bool: runs the operator under no_grad when the arguments are plain"},
    {"philox_call", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(philox_call)), METH_FASTCALL,
     "philox_call(handle, generator, self, *params) -> bool: call() with the key drawn from the generator"},
    {"set_parameter_type", set_parameter_type, METH_O, "set_parameter_type(torch.nn.Parameter)"},
    {"philox_key", philox_key, METH_O, "philox_key(generator) -> (key, offset), or None"},
    {"tensor_facts", pyinit::python::tensor_facts, METH_O,
     "tensor_facts(list of tensors) -> (addresses, codes): see csrc/python/model_facts.cpp"},
    {"tensor_code", pyinit::python::tensor_code, METH_O, "tensor_code(tensor) -> int, or None"},
    {"name_keys", pyinit::python::name_keys, METH_VARARGS,
     "name_keys(seed, names) -> (keys, offsets): name_key of each name, as signed 64-bit integers"},
    {"_set_torch_stream_jump", set_torch_stream_jump, METH_VARARGS, nullptr},
    {"_mt19937_advance_check", mt19937_advance_check, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
  return PyModule_Create(&module_def);
}
