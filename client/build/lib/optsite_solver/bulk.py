"""A run's bulky per-step arrays (DE populations, L-BFGS-B line searches) as compact, exact bytes.

Per run, a `BulkEncoder` turns each step's arrays into one blob and a `BulkDecoder` turns the
blobs back into the very same arrays (float64, bit for bit: nan payloads, inf and -0.0 included).
Between two DE generations most members are unchanged, so a blob usually holds only the rows
that changed since the previous step ("delta"); now and then it holds everything ("keyframe"),
so any step decodes from its keyframe onward, a bounded number of rows back.

Format, version 1 (all integers unsigned LEB128 "varints", floats little-endian IEEE float64):

    blob     = version:u8 (=1)  flags:u8  back:varint  body
               flags bit 0: keyframe; bit 1: body is zlib-compressed (tried on keyframes and on
               bigger deltas of changed rows, kept only when smaller)
               back: seq distance to this blob's keyframe (0 for a keyframe)
    keyframe = count:varint  (name_len:varint  name:utf-8  array)*count
    delta    = (mode:u8  payload)* -- one per array of the keyframe, in its order
               mode 0 FULL: payload = array (any shape: it replaces the previous one)
               mode 1 ROWS: payload = count:varint  gap:varint*count  row-bytes
                      the listed rows (first index = gap, then previous + gap) of an array of the
                      previous step's shape; each row is stored as its bits XOR the previous bits
                      (members that moved a little keep zero high bytes, which zlib shortens)
    array    = ndim:varint  dim:varint*ndim  data:float64*prod(dims)

A blob decodes only after the blobs of the same run from its keyframe onward, in seq order; rows
whose arrays were not given (steps without bulky arrays) are simply skipped. Names may hold "/"
for nesting: {"line_search": {"x": a, "f": b}} is stored as "line_search/x", "line_search/f".
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np

__all__ = ["VERSION", "KEY_STEPS", "KEY_BYTES_RATIO", "BulkEncoder", "BulkDecoder", "BulkError",
           "flatten", "unflatten", "keyframe_back", "is_keyframe", "decode_rows"]

VERSION = 1
# A new keyframe at the latest this many steps after the last one ...
KEY_STEPS = 200
# ... or once the deltas since it add up to this many times its size (bounds what a random
# access reads: at most about (1 + ratio) keyframes' worth of bytes).
KEY_BYTES_RATIO = 4
# zlib is tried on keyframes, and on deltas of at least this many bytes that hold changed rows
# (their XORed bits have zero high bytes); whole arrays of fresh numbers (line searches) gain
# too little for the time it takes on every step of a fast run.
ZLIB_MIN = 256

_KEY, _ZLIB = 1, 2
_FULL, _ROWS = 0, 1
_F8 = np.dtype("<f8")
_U8 = np.dtype("<u8")


class BulkError(ValueError):
    """A blob that is not version 1, is cut short, or was fed without its keyframe."""


# ---- nesting ------------------------------------------------------------------------------------
def flatten(bulky: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{"line_search": {"x": [[..]], "f": [..]}} -> {"line_search/x": array, "line_search/f": array}."""
    out: dict[str, np.ndarray] = {}
    for key, value in bulky.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise BulkError(f"array names must be non-empty text without '/': {key!r}")
        name = prefix + key
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        else:
            out[name] = np.asarray(value, dtype=np.float64)
    return out


def unflatten(arrays: dict[str, np.ndarray]) -> dict:
    """Inverse of flatten (arrays stay numpy arrays)."""
    out: dict = {}
    for name, array in arrays.items():
        *path, leaf = name.split("/")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = array
    return out


# ---- varints ------------------------------------------------------------------------------------
def _varint(n: int, out: bytearray) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = data, pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise BulkError("bulk blob is cut short")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        n = shift = 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
            shift += 7
            if shift > 63:
                raise BulkError("bulk blob holds a malformed number")

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise BulkError("bulk blob is cut short")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def array(self) -> np.ndarray:
        ndim = self.varint()
        shape = tuple(self.varint() for _ in range(ndim))
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        return np.frombuffer(self.take(8 * count), dtype=_F8).reshape(shape).astype(np.float64)


def _put_array(a: np.ndarray, out: bytearray) -> None:
    _varint(a.ndim, out)
    for d in a.shape:
        _varint(d, out)
    out += np.ascontiguousarray(a, dtype=_F8).tobytes()


def _header(blob) -> tuple[int, int, _Reader]:
    r = _Reader(bytes(blob))
    version = r.byte()
    if version != VERSION:
        raise BulkError(f"unsupported bulk format version {version}")
    flags = r.byte()
    back = r.varint()
    return flags, back, r


def keyframe_back(blob) -> int:
    """How many seqs before this blob's step its keyframe is (0: it is one)."""
    return _header(blob)[1]


def is_keyframe(blob) -> bool:
    return bool(_header(blob)[0] & _KEY)


def _bits(a: np.ndarray) -> np.ndarray:
    # rows of raw bits: compared and XORed as integers, so nan, inf and -0.0 are just bit patterns
    return np.ascontiguousarray(a, dtype=_F8).view(_U8).reshape(a.shape[0], -1)


# ---- encoding -----------------------------------------------------------------------------------
class BulkEncoder:
    """Turns one run's steps' arrays, in seq order, into blobs. A fresh encoder (a new run, or the
    first step after a resume) always starts with a keyframe."""

    def __init__(self, *, key_steps: int = KEY_STEPS, key_bytes_ratio: float = KEY_BYTES_RATIO,
                 compress: bool = True):
        if key_steps < 1:
            raise ValueError("key_steps must be at least 1")
        self.key_steps, self.key_bytes_ratio, self.compress = key_steps, key_bytes_ratio, compress
        self._names: list[str] | None = None  # the current keyframe's arrays, in its order
        self._prev: dict[str, np.ndarray] = {}
        self._key_seq = 0
        self._key_size = 0
        self._since_key = 0  # bytes of deltas since the keyframe
        self._last_seq: int | None = None

    def encode(self, seq: int, bulky: dict | None) -> bytes | None:
        """The blob for step `seq` (nested dicts of arrays, as Step.bulky), None if it has none."""
        if self._last_seq is not None and seq <= self._last_seq:
            raise ValueError(f"steps must come in seq order: {seq} after {self._last_seq}")
        self._last_seq = seq
        if not bulky:
            return None
        arrays = flatten(bulky)
        names = list(arrays)
        key = (self._names != names or seq - self._key_seq >= self.key_steps
               or self._since_key >= self.key_bytes_ratio * self._key_size)
        body = bytearray()
        if key:
            _varint(len(names), body)
            for name in names:
                raw = name.encode()
                _varint(len(raw), body)
                body += raw
                _put_array(arrays[name], body)
            pack = True
        else:
            rows = [self._put_delta(self._prev[name], arrays[name], body) for name in names]
            pack = any(rows) and len(body) >= ZLIB_MIN
        blob = self._blob(key, 0 if key else seq - self._key_seq, body, pack)
        if key:
            self._names, self._key_seq, self._key_size, self._since_key = names, seq, len(blob), 0
        else:
            self._since_key += len(blob)
        # copies: the caller's arrays may be live buffers that change after this returns
        self._prev = {n: np.array(a, dtype=np.float64) for n, a in arrays.items()}
        return blob

    @staticmethod
    def _put_delta(old: np.ndarray, new: np.ndarray, out: bytearray) -> bool:
        """Append one array's part of a delta; True if it is changed rows (ROWS with some)."""
        if old.shape != new.shape or new.ndim == 0 or new.shape[0] == 0:
            out.append(_FULL)
            _put_array(new, out)
            return False
        ob, nb = _bits(old), _bits(new)
        changed = np.flatnonzero((ob != nb).any(axis=1))
        if 8 * changed.size * ob.shape[1] + 2 * changed.size >= 8 * new.size:
            out.append(_FULL)  # nearly everything moved: the whole array is no bigger
            _put_array(new, out)
            return False
        out.append(_ROWS)
        _varint(changed.size, out)
        prev = 0
        for i in changed.tolist():
            _varint(i - prev, out)
            prev = i
        out += (nb[changed] ^ ob[changed]).tobytes()
        return changed.size > 0

    def _blob(self, key: bool, back: int, body: bytearray, pack: bool) -> bytes:
        flags = _KEY if key else 0
        payload = bytes(body)
        if self.compress and pack:
            packed = zlib.compress(payload, 6)
            if len(packed) < len(payload):
                flags |= _ZLIB
                payload = packed
        head = bytearray([VERSION, flags])
        _varint(back, head)
        return bytes(head) + payload


# ---- decoding -----------------------------------------------------------------------------------
class BulkDecoder:
    """Feed one run's blobs in seq order from a keyframe onward; each gives back its step's arrays."""

    def __init__(self):
        self._names: list[str] | None = None
        self._prev: dict[str, np.ndarray] = {}
        self._key_seq: int | None = None

    def decode(self, seq: int, blob) -> dict[str, np.ndarray] | None:
        """The flat arrays of step `seq` (see unflatten; read-only), None for a step without any."""
        if blob is None:
            return None
        flags, back, r = _header(blob)
        body = r.data[r.pos:]
        if flags & _ZLIB:
            try:
                body = zlib.decompress(body)
            except zlib.error as exc:
                raise BulkError(f"bulk blob of step {seq} is damaged: {exc}") from None
        r = _Reader(body)
        if flags & _KEY:
            if back != 0:
                raise BulkError(f"keyframe of step {seq} points back {back} steps")
            arrays = {}
            for _ in range(r.varint()):
                name = r.take(r.varint()).decode()
                arrays[name] = r.array()
            self._names, self._key_seq = list(arrays), seq
        else:
            if self._key_seq is None or self._key_seq != seq - back:
                raise BulkError(f"step {seq} needs its keyframe at step {seq - back} first")
            arrays = {}
            for name in self._names:
                mode = r.byte()
                if mode == _FULL:
                    arrays[name] = r.array()
                elif mode == _ROWS:
                    arrays[name] = self._rows(self._prev[name], r)
                else:
                    raise BulkError(f"unknown array mode {mode} in step {seq}")
        if r.pos != len(r.data):
            raise BulkError(f"bulk blob of step {seq} has {len(r.data) - r.pos} bytes too many")
        for a in arrays.values():
            a.flags.writeable = False  # the next delta starts from these: share, never change
        self._prev = arrays
        return dict(arrays)

    @staticmethod
    def _rows(old: np.ndarray, r: _Reader) -> np.ndarray:
        count = r.varint()
        idx, i = [], 0
        for k in range(count):
            i += r.varint()
            idx.append(i)
        bits = _bits(old).copy()
        width = bits.shape[1]
        if count:
            if idx[-1] >= bits.shape[0]:
                raise BulkError("bulk blob names a row beyond the array")
            xor = np.frombuffer(r.take(8 * width * count), dtype=_U8).reshape(count, width)
            bits[idx] ^= xor
        return bits.view(_F8).reshape(old.shape).astype(np.float64, copy=False)


def decode_rows(rows: Iterable[tuple[int, bytes | None]]):
    """(seq, flat arrays or None) for rows (seq, blob) in seq order that start at a keyframe (or
    at a step without arrays before one)."""
    decoder = BulkDecoder()
    for seq, blob in rows:
        yield seq, decoder.decode(seq, blob)
