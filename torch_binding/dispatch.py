"""Back-end selection from an op's capability table, and the platform a call is planned for."""
from __future__ import annotations

from .config import config
from .op_host.common.errors import CannAttentionError
from .op_host.common.platform import PlatformInfo, platform_for_device


def select_backend(op: str, table, params, device_type: str, dtype) -> str:
    """Name of the back end that runs the call (see ``config.backend``)."""
    names = [cap.name for cap in table]
    if config.backend != "auto":
        if config.backend not in names:
            raise CannAttentionError(op, "backend", f"expected one of {names} or 'auto', "
                                     f"got {config.backend!r}")
        cap = table[names.index(config.backend)]
        reason = cap.unsupported(params, device_type, dtype)
        if reason:
            raise CannAttentionError(op, "backend", f"'{cap.name}' was requested but cannot "
                                     f"run this call: {reason}")
        return cap.name
    reasons = []
    for cap in table:
        if not cap.auto:
            continue
        reason = cap.unsupported(params, device_type, dtype)
        if reason is None:
            return cap.name
        reasons.append(f"{cap.name}: {reason}")
    raise CannAttentionError(op, "device", f"a back end for {device_type} tensors; "
                             f"none applies ({'; '.join(reasons)})")


def platform_for(device) -> PlatformInfo:
    return config.platform if config.platform is not None else platform_for_device(device)
