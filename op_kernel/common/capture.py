"""Which CUDA graph capture, if any, the current stream is recording (device schedules shared
by the calls of one captured step: sparse_flash_attention/shared.py).

PyTorch says whether the current stream is capturing but not which capture it is; the driver
does (``cuStreamGetCaptureInfo``: a capture's id is unique in the process). The driver is read
through ctypes, only while a capture is under way, so an eager call pays only PyTorch's check.
Where the driver cannot be asked (no such symbol, an error), the answer is None: callers then
share nothing, which costs time, never correctness.
"""
from __future__ import annotations

import ctypes
import threading

import torch

CAPTURE_ACTIVE = 1          # CU_STREAM_CAPTURE_STATUS_ACTIVE
_LOCK = threading.Lock()
_get_info: list = []        # [the driver function, or None where it cannot be had]


def _driver_get_info():
    if not _get_info:
        with _LOCK:
            if not _get_info:
                try:
                    fn = ctypes.CDLL("libcuda.so.1").cuStreamGetCaptureInfo  # (stream, *st, *id)
                    fn.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                   ctypes.POINTER(ctypes.c_uint64))
                    fn.restype = ctypes.c_int
                except (OSError, AttributeError):
                    fn = None
                _get_info.append(fn)
    return _get_info[0]


def current_capture(device: torch.device) -> tuple[int, int] | None:
    """(capture id, stream handle) of the capture recording ``device``'s current stream, or
    None when it records none (every call outside ``torch.cuda.graph``) or the driver cannot
    say which."""
    if device.type != "cuda" or not torch.cuda.is_current_stream_capturing():
        return None
    get_info = _driver_get_info()
    if get_info is None:
        return None
    stream = torch.cuda.current_stream(device).cuda_stream
    status, capture_id = ctypes.c_int(), ctypes.c_uint64()
    if get_info(ctypes.c_void_p(stream), ctypes.byref(status), ctypes.byref(capture_id)) != 0:
        return None
    return (capture_id.value, stream) if status.value == CAPTURE_ACTIVE else None
