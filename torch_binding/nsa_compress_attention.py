"""npu_nsa_compress_attention: the op's declaration (schema, params, checks, fake, back ends),
which the pipeline (pipeline.py) runs, and its faces (faces.py).

``torch.ops.cann_attention``, ``torch.ops.custom`` and ``cann_attention.torch_npu`` share
torch_npu 2.13's schema: the masks and the three prefix-sum lists are keyword-only;
``cann_attention.mindspore.nsa_compress_attention`` takes them positionally too: MindSpore's
signature makes them keyword-only but its own documented example passes them by position.
The lists are required for layout TND (the only layout); the check refuses a missing one. Returns ``(attention_out, topk_indices_out, softmax_max_out,
softmax_sum_out)``:

- attention_out (T1, N1, D2), the query dtype;
- topk_indices_out (T1, N2, select_block_count) int32, batch-local selection-block ids in
  descending importance, ties to the smaller index, forced blocks (topk_mask True) first;
- softmax_max_out / softmax_sum_out, declared (T1, N1, 8) float32, but written in the kernel's
  memory order (docs/nsa_compress_attention.md): for batch b with query offset t0 and length
  Sq[b], the value of head h and row i lives at flat element 8 * (N1 * t0 + h * Sq[b] + i) + r,
  r in [0, 8) (8 identical copies), i.e. the concatenation over batches of (N1, Sq[b], 8) arrays.
  Read naively as [t, h, :] it is only right when every Sq[b] = 1 or N1 = 1. Use
  ``stats_by_row`` to get the (T1, N1) view. Rows beyond sum(Sq) are zero in every output.

Masks (bool or uint8): atten_mask (max Sq, max C), True = masked (the score is *replaced* by
-FLT_MAX; a fully masked row attends uniformly to the batch's compressed tokens); topk_mask
(max Sq, ceil(max C / M)), True = force the block into the top-k.
"""
from __future__ import annotations

import torch

from .faces import Face
from .library import PRIVATE, register
from .op_kernel.nsa_compress_attention.backward import backward
from .op_host.nsa_compress_attention import check as nca_check
from .op_host.nsa_compress_attention.capabilities import BACKENDS
from .op_host.nsa_compress_attention.params import (
    CHECK, CONVERTERS, OP, STAT_REPLICAS, NsaCompressAttentionParams,
    NsaCompressAttentionTensors, before_parse, output_dtypes, output_shapes)
from .pipeline import OpDef

SCHEMA = (
    "npu_nsa_compress_attention(Tensor query, Tensor key, Tensor value, float scale_value, "
    "int head_num, int compress_block_size, int compress_stride, int select_block_size, "
    "int select_block_count, *, Tensor? topk_mask=None, Tensor? atten_mask=None, "
    "int[]? actual_seq_qlen=None, int[]? actual_cmp_seq_kvlen=None, "
    "int[]? actual_sel_seq_kvlen=None) -> (Tensor, Tensor, Tensor, Tensor)"
)


def _fake(a: dict):
    query = a["query"]
    shapes = output_shapes(query.shape, a["key"].shape, a["value"].shape,
                           a["select_block_count"])
    return tuple(query.new_empty(shape, dtype=dtype)
                 for shape, dtype in zip(shapes, output_dtypes(query.dtype)))


def _gradient(a: dict, outputs, grads):
    """Gradients of attention_out (the other outputs carry none): op_kernel backward.py."""
    out, _, softmax_max, softmax_sum = outputs
    dq, dk, dv = backward(grads[0], a["query"], a["key"], a["value"], out, softmax_max,
                          softmax_sum, scale_value=a["scale_value"], head_num=a["head_num"],
                          atten_mask=a["atten_mask"], actual_seq_qlen=a["actual_seq_qlen"],
                          actual_cmp_seq_kvlen=a["actual_cmp_seq_kvlen"])
    return {"query": dq, "key": dk, "value": dv}


OP_DEF = OpDef(name=OP, schema=SCHEMA, params=NsaCompressAttentionParams,
               tensors=NsaCompressAttentionTensors, check=nca_check.check,
               check_values=nca_check.check_values, fake=_fake, backends=BACKENDS,
               converters=CONVERTERS, before_parse=before_parse, checker=CHECK,
               gradient=_gradient, non_differentiable_outputs=(1, 2, 3))
MINDSPORE_SCHEMA = (   # mindspore.ops.nsa_compress_attention (seed 002), see the module doc
    "nsa_compress_attention(Tensor query, Tensor key, Tensor value, float scale_value, "
    "int head_num, int compress_block_size, int compress_stride, int select_block_size, "
    "int select_block_count, Tensor? topk_mask=None, Tensor? atten_mask=None, "
    "int[]? actual_seq_qlen=None, int[]? actual_cmp_seq_kvlen=None, "
    "int[]? actual_sel_seq_kvlen=None) -> (Tensor, Tensor, Tensor, Tensor)"
)
FACES = (
    Face(OP_DEF, PRIVATE, SCHEMA),
    Face(OP_DEF, "custom", SCHEMA),
    Face(OP_DEF, "npu", SCHEMA),
    Face(OP_DEF, "mindspore", MINDSPORE_SCHEMA, registered=False),
)
npu_nsa_compress_attention = register(OP_DEF, FACES, __doc__)


def stats_by_row(stat: torch.Tensor, actual_seq_qlen) -> torch.Tensor:
    """(T1, N1) view [t, h] of softmax_max_out / softmax_sum_out (undoes the flat order)."""
    t1, n1 = stat.shape[0], stat.shape[1]
    flat = stat.reshape(-1, STAT_REPLICAS)[:, 0]
    result = torch.zeros(t1, n1, dtype=stat.dtype, device=stat.device)
    start = 0
    for end in actual_seq_qlen:
        sq = int(end) - start
        result[start:start + sq] = flat[n1 * start:n1 * (start + sq)].view(n1, sq).T
        start = int(end)
    return result

