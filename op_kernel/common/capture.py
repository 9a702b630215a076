"""Which CUDA graph capture, if any, the current stream is recording (device schedules shared
by the calls of one captured step: sparse_flash_attention/shared.py).

PyTorch says whether the current stream is capturing but not which capture it is; the driver
does (``cuStreamGetCaptureInfo``: a capture's id is unique in the process). The driver is read
through ctypes, once a capture is under way, so an eager call pays only PyTorch's check.
"""
from __future__ import annotations

import ctypes
import threading

import torch

CAPTURE_ACTIVE = 1          # CU_STREAM_CAPTURE_STATUS_ACTIVE
_LOCK = threading.Lock()
_get_info = []


def _driver_get_info():
    if not _get_info:
        with _LOCK:
            if not _get_info:
                fn = ctypes.CDLL("libcuda.so.1").cuStreamGetCaptureInfo   # (stream, *status, *id)
                fn.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                               ctypes.POINTER(ctypes.c_uint64))
                fn.restype = ctypes.c_int
                _get_info.append(fn)
    return _get_info[0]


def current_capture(device: torch.device) -> tuple[int, int] | None:
    """(capture id, stream handle) of the capture recording ``device``'s current stream, or
    None when it records none (every call outside ``torch.cuda.graph``)."""
    if device.type != "cuda" or not torch.cuda.is_current_stream_capturing():
        return None
    stream = torch.cuda.current_stream(device).cuda_stream
    status, capture_id = ctypes.c_int(), ctypes.c_uint64()
    err = _driver_get_info()(ctypes.c_void_p(stream), ctypes.byref(status),
                             ctypes.byref(capture_id))
    if err != 0:
        raise RuntimeError(f"cuStreamGetCaptureInfo failed with CUDA error {err}")
    return (capture_id.value, stream) if status.value == CAPTURE_ACTIVE else None
