#pragma once

// What the files of pyinit._C (csrc/python/) share.

#include <Python.h>

#include <c10/core/DispatchKeySet.h>

namespace pyinit::python {

// Dispatch keys that send a tensor's operators through Python or a transform (torch.func, functionalization):
// the direct call leaves such tensors to torch.ops, and init_module_ tells them apart (Note [Tensor codes]).
inline const c10::DispatchKeySet kSlowPathKeys({c10::DispatchKey::Python, c10::DispatchKey::PythonTLSSnapshot,
                                                c10::DispatchKey::FuncTorchBatched,
                                                c10::DispatchKey::FuncTorchGradWrapper, c10::DispatchKey::Functionalize,
                                                c10::DispatchKey::BatchedNestedTensor});

// torch.nn.Parameter, set by pyinit/_ops.py (_C.set_parameter_type).
extern PyTypeObject* parameter_type;

// Exactly a torch.Tensor or a torch.nn.Parameter (no other subclass).
bool is_plain_tensor(PyObject* obj);

// csrc/python/model_facts.cpp: what pyinit.init_module_ asks of many tensors and names at once.
PyObject* tensor_facts(PyObject* self, PyObject* tensors);
PyObject* tensor_code(PyObject* self, PyObject* tensor);
PyObject* name_keys(PyObject* self, PyObject* args);

}  // namespace pyinit::python
