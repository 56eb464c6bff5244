// What pyinit.init_module_ (pyinit/model.py) asks of every parameter, in one call for all of them: their
// addresses and codes (tensor_facts), and their philox keys from names (name_keys). One Python call per tensor and
// question costs more than the answers do (Note [Per-tensor objects] in pyinit/model.py).
//
// Note [Tensor codes]
// ~~~~~~~~~~~~~~~~~~~
// A plain tensor's code packs what decides whether pyinit/_batch.py may put it into a *_many_ call, and which
// run it may join: bits 0-7 the device type, 8-23 the device index + 1, 24-31 the dtype, 32-39 the layout, 40 an
// nn.Parameter (not a torch.Tensor), 41 an inference tensor, 42 any of kSlowPathKeys. Tensors with equal codes
// are alike for every check BatchingStream makes, so it decides once per code, and `code & 0xFFFFFF` (the device)
// splits runs. Other objects, tensor subclasses included, have no code (None): the batch asks Python instead.

#include <Python.h>

#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/object_ptr.h>

#include <cstdint>

#include "python/blake2b.h"
#include "python/module.h"

namespace pyinit::python {
namespace {

int64_t code_of(const at::Tensor& t, bool parameter) {
  const c10::Device device = t.device();
  return static_cast<int64_t>(static_cast<uint8_t>(device.type())) | (static_cast<int64_t>(device.index()) + 1) << 8 |
         static_cast<int64_t>(static_cast<uint8_t>(t.scalar_type())) << 24 |
         static_cast<int64_t>(static_cast<uint8_t>(t.layout())) << 32 | static_cast<int64_t>(parameter) << 40 |
         static_cast<int64_t>(t.is_inference()) << 41 | static_cast<int64_t>(t.key_set().has_any(kSlowPathKeys)) << 42;
}

// The address of the first element, as Tensor.data_ptr() gives it, for a tensor whose storage holds its data;
// None otherwise (no storage, meta or not yet allocated data), where pyinit/model.py's _alias_key decides.
PyObject* address_of(const at::Tensor& t) {
  const void* data = nullptr;
  try {
    if (!t.has_storage()) Py_RETURN_NONE;
    data = t.const_data_ptr();
  } catch (const c10::Error&) {
    Py_RETURN_NONE;
  }
  return PyLong_FromVoidPtr(const_cast<void*>(data));
}

}  // namespace

// tensor_facts(tensors: list) -> (addresses, codes): for each plain tensor (a torch.Tensor or nn.Parameter,
// exactly) its data_ptr() (None where address_of says so) and its code (Note [Tensor codes]); None and None for
// anything else.
PyObject* tensor_facts(PyObject* /*self*/, PyObject* tensors) {
  HANDLE_TH_ERRORS
  if (!PyList_Check(tensors)) {
    PyErr_SetString(PyExc_TypeError, "tensor_facts: expected a list");
    return nullptr;
  }
  const Py_ssize_t n = PyList_GET_SIZE(tensors);
  THPObjectPtr addresses(PyList_New(n));
  THPObjectPtr codes(PyList_New(n));
  if (!addresses || !codes) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* obj = PyList_GET_ITEM(tensors, i);
    PyObject* address = Py_None;
    PyObject* code = Py_None;
    if (is_plain_tensor(obj)) {
      const at::Tensor& t = THPVariable_Unpack(obj);
      address = address_of(t);
      if (address == nullptr) return nullptr;
      code = PyLong_FromLongLong(code_of(t, Py_TYPE(obj) == parameter_type));
      if (code == nullptr) {
        Py_DECREF(address);
        return nullptr;
      }
    } else {
      Py_INCREF(Py_None);
      Py_INCREF(Py_None);
    }
    PyList_SET_ITEM(addresses.get(), i, address);  // steals the references
    PyList_SET_ITEM(codes.get(), i, code);
  }
  return PyTuple_Pack(2, addresses.get(), codes.get());
  END_HANDLE_TH_ERRORS
}

// tensor_code(tensor) -> int, or None: tensor_facts' code of one object.
PyObject* tensor_code(PyObject* /*self*/, PyObject* tensor) {
  HANDLE_TH_ERRORS
  if (!is_plain_tensor(tensor)) Py_RETURN_NONE;
  return PyLong_FromLongLong(code_of(THPVariable_Unpack(tensor), Py_TYPE(tensor) == parameter_type));
  END_HANDLE_TH_ERRORS
}

// name_keys(seed, names: list of str or None) -> (keys, offsets): pyinit._streams.name_key(seed, name) of each
// name (seed taken mod 2**64), each word as a signed 64-bit integer as the philox operators take it; 0 and 0 for
// None.
PyObject* name_keys(PyObject* /*self*/, PyObject* args) {
  unsigned long long seed = 0;
  PyObject* names = nullptr;
  if (!PyArg_ParseTuple(args, "KO!", &seed, &PyList_Type, &names)) return nullptr;
  uint8_t key[8];
  for (int i = 0; i < 8; ++i) key[i] = static_cast<uint8_t>(seed >> (8 * i));
  static constexpr char kPerson[] = "pyinit.philox";
  const blake2b::State base =
      blake2b::keyed(16, key, sizeof(key), reinterpret_cast<const uint8_t*>(kPerson), sizeof(kPerson) - 1);
  // The key block is the same for every name: compressed once here for the names that follow it with data (an
  // empty name's final block is the key block itself).
  blake2b::State after_key = base;
  blake2b::push_block(after_key);
  const Py_ssize_t n = PyList_GET_SIZE(names);
  THPObjectPtr keys(PyList_New(n));
  THPObjectPtr offsets(PyList_New(n));
  if (!keys || !offsets) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* name = PyList_GET_ITEM(names, i);
    uint64_t words[2] = {0, 0};
    if (name != Py_None) {
      if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "name_keys: names must be str or None");
        return nullptr;
      }
      Py_ssize_t size = 0;
      const char* utf8 = PyUnicode_AsUTF8AndSize(name, &size);  // name.encode("utf-8"), its errors included
      if (utf8 == nullptr) return nullptr;
      blake2b::State state = size > 0 ? after_key : base;
      blake2b::update(state, reinterpret_cast<const uint8_t*>(utf8), static_cast<size_t>(size));
      blake2b::finish16(state, words[0], words[1]);
    }
    PyObject* k = PyLong_FromLongLong(static_cast<long long>(words[0]));
    PyObject* o = PyLong_FromLongLong(static_cast<long long>(words[1]));
    if (k == nullptr || o == nullptr) {
      Py_XDECREF(k);
      Py_XDECREF(o);
      return nullptr;
    }
    PyList_SET_ITEM(keys.get(), i, k);
    PyList_SET_ITEM(offsets.get(), i, o);
  }
  return PyTuple_Pack(2, keys.get(), offsets.get());
}

}  // namespace pyinit::python
