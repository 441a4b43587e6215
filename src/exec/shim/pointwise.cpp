// Fused oneDNN convolution + activation for the frozen CPU executor.
//
// libtorch registers `mkldnn::_convolution_pointwise` (what PyTorch's inductor and freezing use on
// CPU: one oneDNN convolution with the activation as a post-op), but only in the dispatcher: tch's
// generated bindings cover the `aten` namespace alone. This C function calls the op through the
// dispatcher (boxed, so no C++ signature has to match) and reports C++ exceptions as messages
// instead of aborting. Tensors cross as tch's handles, which are `at::Tensor*`.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/ivalue.h>
#include <ATen/core/stack.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

c10::OperatorHandle op(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

void set_error(char* err, size_t len, const char* what) {
  if (err != nullptr && len > 0) {
    std::snprintf(err, len, "%s", what);
  }
}

std::vector<int64_t> ints(const int64_t* v, size_t n) { return std::vector<int64_t>(v, v + n); }

}  // namespace

extern "C" {

// y = act(conv(x, w) + b) in one oneDNN primitive; `attr` is "none", "relu" or "hardtanh" (with
// lo/hi), `b` may be null. Returns a new tensor handle or null (err set).
at::Tensor* dnas_conv_pointwise(const at::Tensor* x, const at::Tensor* w, const at::Tensor* b, const int64_t* pad, const int64_t* stride,
                                const int64_t* dil, int64_t groups, const char* attr, double lo, double hi, char* err, size_t err_len) {
  try {
    static const auto conv = op("mkldnn::_convolution_pointwise", "");
    torch::jit::Stack s;
    s.emplace_back(*x);
    s.emplace_back(*w);
    s.emplace_back(b == nullptr ? c10::IValue() : c10::IValue(*b));
    s.emplace_back(ints(pad, 2));
    s.emplace_back(ints(stride, 2));
    s.emplace_back(ints(dil, 2));
    s.emplace_back(groups);
    s.emplace_back(std::string(attr));
    c10::List<std::optional<c10::Scalar>> scalars;
    if (std::string(attr) == "hardtanh") {
      scalars.push_back(c10::Scalar(lo));
      scalars.push_back(c10::Scalar(hi));
    }
    s.emplace_back(scalars);
    s.emplace_back(c10::IValue());
    conv.callBoxed(s);
    return new at::Tensor(s.back().toTensor());
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return nullptr;
  }
}

}  // extern "C"
