// Our entry point to FlashMLA's sm90 sparse prefill kernel, for the SFA benchmark's same-run
// peer (benchmarks/flashmla_peer/__init__.py builds it with FlashMLA's own sources from a copy
// the user gives; nothing of FlashMLA is committed here).
//
// sparse_prefill(q [s_q, h_q, d_qk] bf16, kv [s_kv, h_kv, d_qk] bf16, indices [s_q, h_kv, topk]
// int32, sm_scale, d_v, topk_length [s_q] int32 or None) -> (out [s_q, h_q, d_v] bf16,
// max_logits [s_q, h_q] fp32, lse [s_q, h_q] fp32): the arguments of FlashMLA's
// flash_mla_sparse_fwd, checked here, then FlashMLA's host launcher for Hopper
// (sm90::run_fwd_kernel: d_qk 512 / 576, with or without per-row top-k lengths).
#include <optional>
#include <vector>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/extension.h>

#include "params.h"
#include "sm90/prefill/sparse/fwd.h"

namespace {

constexpr float kLog2E = 1.44269504088896340736f;

int as_int(int64_t v, const char* what) {
    TORCH_CHECK(v >= 0 && v <= INT32_MAX, what, " does not fit an int: ", v);
    return static_cast<int>(v);
}

void expect(const at::Tensor& t, const char* name, at::ScalarType dtype, int64_t dims) {
    TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
    TORCH_CHECK(t.scalar_type() == dtype, name, " must be ", dtype, ", got ", t.scalar_type());
    TORCH_CHECK(t.dim() == dims, name, " must have ", dims, " dimensions, got ", t.dim());
    TORCH_CHECK(t.stride(-1) == 1, name, " must be contiguous in its last dimension");
}

std::vector<at::Tensor> sparse_prefill(const at::Tensor& q, const at::Tensor& kv,
                                       const at::Tensor& indices, double sm_scale, int64_t d_v,
                                       const std::optional<at::Tensor>& topk_length) {
    expect(q, "q", at::kBFloat16, 3);
    expect(kv, "kv", at::kBFloat16, 3);
    expect(indices, "indices", at::kInt, 3);
    const int s_q = as_int(q.size(0), "s_q"), h_q = as_int(q.size(1), "h_q");
    const int d_qk = as_int(q.size(2), "d_qk"), s_kv = as_int(kv.size(0), "s_kv");
    const int h_kv = as_int(kv.size(1), "h_kv"), topk = as_int(indices.size(2), "topk");
    TORCH_CHECK(d_qk == 512 || d_qk == 576, "d_qk must be 512 or 576, got ", d_qk);
    TORCH_CHECK(d_v == 512, "d_v must be 512, got ", d_v);
    TORCH_CHECK(h_q == 64 || h_q == 128, "h_q must be 64 or 128, got ", h_q);
    TORCH_CHECK(kv.size(2) == d_qk, "kv's last dimension must be d_qk");
    TORCH_CHECK(indices.size(0) == s_q && indices.size(1) == h_kv, "indices must be [s_q, h_kv, topk]");
    if (topk_length) {
        expect(*topk_length, "topk_length", at::kInt, 1);
        TORCH_CHECK(topk_length->size(0) == s_q, "topk_length must be [s_q]");
    }
    c10::cuda::CUDAGuard guard{q.device()};
    int major = 0, num_sms = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor,
                                          q.get_device()));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount,
                                          q.get_device()));
    TORCH_CHECK(major == 9, "FlashMLA's sparse prefill here is built for sm_90a only");

    auto out = torch::empty({s_q, h_q, d_v}, q.options());
    auto max_logits = torch::empty({s_q, h_q}, q.options().dtype(at::kFloat));
    auto lse = torch::empty({s_q, h_q}, q.options().dtype(at::kFloat));
    using bf16 = cutlass::bfloat16_t;
    SparseAttnFwdParams params = {
        s_q, s_kv, h_q, h_kv, d_qk, static_cast<int>(d_v), topk,
        static_cast<float>(sm_scale), static_cast<float>(sm_scale) * kLog2E,
        reinterpret_cast<bf16*>(q.data_ptr()), reinterpret_cast<bf16*>(kv.data_ptr()),
        indices.data_ptr<int>(), nullptr,
        topk_length ? topk_length->data_ptr<int>() : nullptr,
        as_int(q.stride(0), "q stride"), as_int(q.stride(1), "q stride"),
        as_int(kv.stride(0), "kv stride"), as_int(kv.stride(1), "kv stride"),
        as_int(indices.stride(0), "indices stride"), as_int(indices.stride(1), "indices stride"),
        reinterpret_cast<bf16*>(out.data_ptr()), max_logits.data_ptr<float>(),
        lse.data_ptr<float>(), num_sms, c10::cuda::getCurrentCUDAStream().stream()};
    sm90::run_fwd_kernel(params);
    return {out, max_logits, lse};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("sparse_prefill", &sparse_prefill, "FlashMLA's sm90 sparse prefill (our entry point)",
          py::arg("q"), py::arg("kv"), py::arg("indices"), py::arg("sm_scale"),
          py::arg("d_v") = 512, py::arg("topk_length") = std::nullopt);
}
