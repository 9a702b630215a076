"""The readable golden of npu_lightning_indexer (docs/lightning_indexer.md, Semantics), row by row.

For every valid query row: gather the visible keys [0, n_vis) through the layout's addressing,
score them, sort them stably by descending score (ties: smaller key index first) and write the
first min(sparse_count, n_vis) indices; the rest of the row is -1 (values -inf). Rows that see
nothing (mode 3 with Lq > Lk, padded BSND rows, TND rows past the last prefix sum) are all -1.
The kernel's -1 padding is followed, not the upstream golden's (which fills the row with indices
of masked keys when n_vis < sparse_count <= Lk).

Score arithmetic (the project's exactly rounded form, see docs/lightning_indexer.md):
``x = <q[h], k[j]>`` is accumulated in fp64 (the bf16/fp16 products are exact) and rounded once
to fp32; ``ReLU(x) * float(w[h])`` in fp32; the head sum is accumulated in fp64 and rounded once
to fp32. Both roundings are independent of the summation order, so any implementation that
follows them (the emulator's chunked, head-grouped computation included) gets the same bits.
``compute_dtype`` (e.g. bf16) instead runs the whole score in that dtype: the oracle's baseline.
Only tests import this module.
"""
from __future__ import annotations

import torch


def _lengths(actual, layout, default, batch):
    """(start row, length) per batch: counts for BSND / PA_BSND, prefix sums for TND."""
    if layout == "TND":
        ends = [int(x) for x in actual.tolist()]
        starts = [0] + ends[:-1]
        return starts, [e - s for s, e in zip(starts, ends)]
    lens = [int(x) for x in actual.tolist()] if actual is not None else [default] * batch
    return [b * default for b in range(batch)], lens


class _Rows:
    """The query rows and key addressing of one call (docs/lightning_indexer.md, Layouts)."""

    def __init__(self, query, key, weights, actual_seq_lengths_query, actual_seq_lengths_key,
                 block_table, layout_query, layout_key):
        self.key, self.block_table, self.layout_key = key, block_table, layout_key
        n1 = query.shape[-2]
        if layout_query == "TND":
            self.batch, s1 = actual_seq_lengths_query.numel(), query.shape[0]
        else:
            self.batch, s1 = query.shape[0], query.shape[1]
        self.q = query.reshape(-1, n1, query.shape[-1])
        self.w = weights.reshape(-1, n1)
        self.q_start, self.q_len = _lengths(actual_seq_lengths_query, layout_query, s1,
                                            self.batch)
        if layout_key == "PA_BSND":
            default, lengths_layout = 0, "BSND"      # starts unused; lengths required
        else:
            default = key.shape[0] if layout_key == "TND" else key.shape[1]
            lengths_layout = layout_key
        self.k_start, self.k_len = _lengths(actual_seq_lengths_key, lengths_layout, default,
                                            self.batch)

    def keys(self, b, positions):
        """[len(positions), D] keys of batch b at logical positions."""
        positions = torch.as_tensor(positions, dtype=torch.int64)
        if self.layout_key == "PA_BSND":
            bs = self.key.shape[1]
            pages = self.block_table[b, positions // bs].long()
            return self.key[pages, positions % bs, 0]
        if self.layout_key == "TND":
            return self.key[self.k_start[b] + positions, 0]
        return self.key[b, positions, 0]


def _scores(q, w, k, compute_dtype):
    """score[j] = sum_h w[h] * ReLU(<q[h], k[j]>) for q [N1, D], w [N1], k [n, D]."""
    if compute_dtype == torch.float32:
        x = (q.double() @ k.double().T).float()                   # [N1, n], rounded once
        terms = torch.relu(x) * w.float()[:, None]                # fp32
        return terms.double().sum(0).float() + 0.0                # rounded once; -0 -> +0
    x = q.to(compute_dtype) @ k.to(compute_dtype).T
    return (torch.relu(x) * w.to(compute_dtype)[:, None]).sum(0)


def lightning_indexer(query, key, weights, *, actual_seq_lengths_query=None,
                      actual_seq_lengths_key=None, block_table=None, layout_query="BSND",
                      layout_key="BSND", sparse_count=2048, sparse_mode=3,
                      compute_dtype=torch.float32, values_dtype=None):
    """(sparse_indices int32, sparse_values) with the op's output shapes (BSND or TND).

    ``values_dtype``: dtype of the returned values (default: the query dtype; pass float32
    to get the unrounded scores).
    """
    r = _Rows(query, key, weights, actual_seq_lengths_query, actual_seq_lengths_key,
              block_table, layout_query, layout_key)
    rows = r.q.shape[0]
    out_idx = torch.full((rows, sparse_count), -1, dtype=torch.int32)
    out_val = torch.full((rows, sparse_count), float("-inf"), dtype=torch.float32)
    for b in range(r.batch):
        for s in range(r.q_len[b]):
            row = r.q_start[b] + s
            nvis = r.k_len[b] if sparse_mode == 0 else r.k_len[b] - r.q_len[b] + s + 1
            nvis = max(0, min(nvis, r.k_len[b]))
            if nvis == 0:
                continue
            score = _scores(r.q[row], r.w[row], r.keys(b, range(nvis)), compute_dtype).float()
            order = torch.argsort(-score, stable=True)            # ties: smaller j first
            n = min(sparse_count, nvis)
            out_idx[row, :n] = order[:n].to(torch.int32)
            out_val[row, :n] = score[order[:n]]
    shape = ((query.shape[0], 1, sparse_count) if layout_query == "TND"
             else (query.shape[0], query.shape[1], 1, sparse_count))
    vdt = query.dtype if values_dtype is None else values_dtype
    return out_idx.reshape(shape), out_val.to(vdt).reshape(shape)


def scores_at(query, key, weights, sparse_indices, *, actual_seq_lengths_query=None,
              actual_seq_lengths_key=None, block_table=None, layout_query="BSND",
              layout_key="BSND", compute_dtype=torch.float32):
    """Scores of the keys named by ``sparse_indices`` (fp32 out; -inf at -1 entries).

    Gives the oracle its expected values (fp32) and its baseline (``compute_dtype`` = the input
    dtype) at the same indices as the output under test.
    """
    r = _Rows(query, key, weights, actual_seq_lengths_query, actual_seq_lengths_key,
              block_table, layout_query, layout_key)
    idx = sparse_indices.reshape(r.q.shape[0], -1)
    out = torch.full(idx.shape, float("-inf"), dtype=torch.float32)
    for b in range(r.batch):
        for s in range(r.q_len[b]):
            row = r.q_start[b] + s
            valid = idx[row] >= 0
            if valid.any():
                pos = idx[row][valid].long()
                out[row, valid] = _scores(r.q[row], r.w[row], r.keys(b, pos),
                                          compute_dtype).float()
    return out.reshape(sparse_indices.shape)
