"""The workspace of a GPU call: kept between the eager calls of one thread on one stream.

An allocation costs ~5 us of host time on the GPU machines, an eighth of an eager call's budget,
and a workspace holds nothing a call leaves behind. So an eager call reuses the workspace of the
last eager call made by the same thread on the same device and stream, grown when a call needs
more. The reuse is safe because everything that writes it is ordered: one stream runs the
kernels of consecutive calls in order, and one thread issues a call's launches together (two
threads sharing a stream would interleave them, hence one workspace per thread). A new
workspace is zeroed once; a back end that keeps counters in it (metadata.ARRIVALS) sets them
back to zero in the kernels that use them, which holds only while no other kernel writes there:
so each user (a back end, named by ``user``) keeps its own.

Inside a CUDA graph capture a call gets a workspace of its own, from the graph's pool: a graph
keeps the addresses it was captured with, and a kept workspace may be replaced while the graph
lives. Such a workspace, and one for CPU tensors (Triton's interpreter), is zeroed where a back
end asks (``zeroed`` bytes at its head). Entries are few (``CACHE_SIZE`` (thread, device,
stream) triples, the oldest dropped first) and ``cann_attention.clear_caches()`` frees them.
"""
from __future__ import annotations

import threading

import torch

CACHE_SIZE = 16
_LOCK = threading.Lock()
_kept: dict = {}


def workspace(device: torch.device, nbytes: int, zeroed: int = 0, keep: bool = True,
              user: str = "") -> torch.Tensor:
    """A uint8 buffer of at least ``nbytes`` on ``device`` whose first ``zeroed`` bytes are 0:
    the kept one of ``user``, this thread and ``device``'s current stream for an eager CUDA call,
    a new one inside a capture, on CPU and where the caller will hold it (``keep=False``: launches
    built once and replayed later, which a later call must not overwrite) (module doc)."""
    if not keep or device.type != "cuda" or torch.cuda.is_current_stream_capturing():
        ws = torch.empty(nbytes, dtype=torch.uint8, device=device)
        if zeroed:
            ws[:zeroed].zero_()
        return ws
    key = (user, threading.get_ident(), device.index,
           torch._C._cuda_getCurrentRawStream(device.index))
    ws = _kept.get(key)
    if ws is None or ws.numel() < nbytes:
        ws = torch.zeros(nbytes, dtype=torch.uint8, device=device)
        with _LOCK:
            _kept.pop(key, None)
            _kept[key] = ws
            while len(_kept) > CACHE_SIZE:
                del _kept[next(iter(_kept))]
    return ws


def clear() -> None:
    with _LOCK:
        _kept.clear()


def kept() -> int:
    """How many workspaces are kept (tests)."""
    return len(_kept)
