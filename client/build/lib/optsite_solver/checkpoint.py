"""Checkpoints as bytes: an .npz of the arrays plus the JSON state, loadable without pickle."""
from __future__ import annotations

import io
import json

import numpy as np

__all__ = ["encode_checkpoint", "decode_checkpoint"]

_STATE_KEY = "__state__"


def encode_checkpoint(cp: dict) -> bytes:
    """{"arrays": {name: ndarray}, "state": json-able dict} -> bytes (npz)."""
    arrays = cp["arrays"]
    if _STATE_KEY in arrays:
        raise ValueError(f"array name {_STATE_KEY!r} is reserved")
    state = json.dumps(cp["state"], allow_nan=False, separators=(",", ":")).encode()
    buf = io.BytesIO()
    np.savez(buf, **arrays, **{_STATE_KEY: np.frombuffer(state, dtype=np.uint8)})
    return buf.getvalue()


def decode_checkpoint(data: bytes) -> dict:
    """bytes from encode_checkpoint -> {"arrays": ..., "state": ...} (never unpickles)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(arrays.pop(_STATE_KEY).tobytes().decode())
    return {"arrays": arrays, "state": state}
