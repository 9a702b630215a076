"""Every op's plan serialises to its versioned TilingData: all fields present, the bytes the
layout's size, a round trip that gives the plan's values back, the C struct of the same layout,
and a refusal of another layout version."""
from __future__ import annotations

import pytest
import torch

from cann_attention.op_host.common.platform import ASCEND_A3, CPU, H100
from cann_attention.op_host.flash_attention import tiling as fa_tiling
from cann_attention.op_host.incre_flash_attention import tiling as ifa_tiling
from cann_attention.op_host.lightning_indexer import tiling as li_tiling
from cann_attention.op_host.nsa_compress_attention import tiling as nsa_tiling
from cann_attention.op_host.sparse_flash_attention import tiling as sfa_tiling
from testing.calls import checked
from testing.sparse_flash_attention_cases import make_case

META = dict(device="meta")


def _sfa():
    case = make_case(B=2, S1=2, S2=128, N1=16, K=32, layout_kv="PA_BSND", page=32)
    p, _ = checked("npu_sparse_flash_attention", *case.args, **case.kwargs)
    return sfa_tiling, p, dict(n1=16, sparse_count=32, layout_kv=2, page_size=32)


def _li():
    p, _ = checked("npu_lightning_indexer",
                   torch.empty(2, 3, 8, 128, dtype=torch.bfloat16, **META),
                   torch.empty(2, 256, 1, 128, dtype=torch.bfloat16, **META),
                   torch.empty(2, 3, 8, dtype=torch.bfloat16, **META), sparse_count=64)
    return li_tiling, p, dict(n1=8, sparse_count=64, batch=2, key_capacity=256)


def _fa():
    p, _ = checked("npu_flash_attention", torch.empty(2, 64, 8, 64, dtype=torch.float16, **META),
                   torch.empty(2, 96, 2, 64, dtype=torch.float16, **META),
                   torch.empty(2, 96, 2, 64, dtype=torch.float16, **META), 0.125,
                   sparse_mode=3)
    return fa_tiling, p, dict(n1=8, n2=2, head_dim=64, sparse_mode=3, key_capacity=96)


def _ifa():
    p, _ = checked("npu_incre_flash_attention",
                   torch.empty(2, 1, 8 * 64, dtype=torch.float16, **META),
                   torch.empty(2, 128, 2 * 64, dtype=torch.float16, **META),
                   torch.empty(2, 128, 2 * 64, dtype=torch.float16, **META),
                   actual_seq_lengths=[100, 17], num_heads=8, num_key_value_heads=2)
    return ifa_tiling, p, dict(n1=8, n2=2, head_dim=64, batch=2, kv_capacity=128)


def _nsa():
    q = torch.empty(40, 4, 64, dtype=torch.float16, **META)
    k = torch.empty(10, 1, 64, dtype=torch.float16, **META)
    v = torch.empty(10, 1, 32, dtype=torch.float16, **META)
    p, _ = checked("npu_nsa_compress_attention", q, k, v, 0.125, 4, 32, 16, 64, 2,
                   actual_seq_qlen=[40], actual_cmp_seq_kvlen=[10], actual_sel_seq_kvlen=[3])
    return nsa_tiling, p, dict(n1=4, n2=1, d1=64, d2=32, select_block_count=2)


@pytest.mark.parametrize("make", [_sfa, _li, _fa, _ifa, _nsa],
                         ids=["sfa", "li", "fa", "ifa", "nsa"])
@pytest.mark.parametrize("platform", [ASCEND_A3, CPU, H100], ids=lambda p: p.name)
def test_tiling_data_round_trip(make, platform):
    module, p, expected = make()
    plan = module.plan(p, platform)
    data = module.tiling_data(plan, p)
    layout = module.TILING_DATA
    assert len(data) == layout.size
    fields = layout.unpack(data)
    assert set(fields) == {n for n, _ in layout.ordered}
    assert fields["version"] == layout.version and fields["num_cores"] == platform.num_cores
    for name, value in expected.items():
        assert fields[name] == value, name
    struct = layout.c_struct()
    assert all(f" {n};" in struct for n, _ in layout.ordered)
    with pytest.raises(ValueError, match="version"):
        layout.unpack(b"\xff" + data[1:])


def test_a_layout_refuses_missing_and_unknown_fields():
    layout = sfa_tiling.TILING_DATA
    with pytest.raises(ValueError, match="missing fields"):
        layout.pack(1, num_rows=1)
