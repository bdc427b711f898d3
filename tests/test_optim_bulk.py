"""runs.optim.bulk: bulky step arrays as bytes and back, bit for bit, from any keyframe."""
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs.optim.bulk import (BulkDecoder, BulkEncoder, BulkError, decode_rows, flatten,
                             is_keyframe, keyframe_back, unflatten)

# Floats as bit patterns: every nan payload, both infinities, -0.0, subnormals.
bits64 = st.integers(min_value=0, max_value=2**64 - 1)
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, struct.unpack("<d", struct.pack("<Q", 0x7FF8DEADBEEF0001))[0],
           5e-324, -1.7976931348623157e308]


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype == np.float64 and \
        np.array_equal(a.view(np.uint64), b.view(np.uint64))


def same_dict(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(same(a[k], b[k]) for k in a)


@st.composite
def runs_of_steps(draw):
    """A run's bulky arrays step by step: a population whose rows change a few at a time (and
    sometimes all, or its shape), its energies, and now and then a line search or no arrays."""
    members = draw(st.integers(1, 12))
    dim = draw(st.integers(1, 5))
    pop = np.array(draw(st.lists(bits64, min_size=members * dim, max_size=members * dim)),
                   dtype=np.uint64).view(np.float64).reshape(members, dim)
    energies = np.array(draw(st.lists(st.sampled_from(SPECIAL) | st.floats(), min_size=members,
                                      max_size=members)), dtype=np.float64)
    steps = []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["rows", "rows", "rows", "same", "all", "shape", "none", "ls"]))
        if kind == "none":
            steps.append(None)
            continue
        if kind == "ls":
            k = draw(st.integers(0, 3))
            steps.append({"line_search": {
                "x": np.array(draw(st.lists(st.floats(allow_nan=True), min_size=k * dim, max_size=k * dim)),
                              dtype=np.float64).reshape(k, dim),
                "f": np.array(draw(st.lists(st.floats(), min_size=k, max_size=k)), dtype=np.float64)}})
            continue
        pop, energies = pop.copy(), energies.copy()
        if kind == "rows" and len(pop):
            for i in draw(st.lists(st.integers(0, len(pop) - 1), max_size=4)):
                pop[i] = draw(st.sampled_from(SPECIAL)) if draw(st.booleans()) else \
                    np.array([draw(bits64) for _ in range(pop.shape[1])], dtype=np.uint64).view(np.float64)
                energies[i] = draw(st.sampled_from(SPECIAL) | st.floats())
            if draw(st.booleans()) and len(pop) > 1:  # a swap, like scipy's promote-lowest-energy
                pop[[0, -1]] = pop[[-1, 0]]
        elif kind == "all":
            pop = -pop
        elif kind == "shape":
            n = draw(st.integers(0, 6))
            pop = np.array(draw(st.lists(st.floats(), min_size=n * dim, max_size=n * dim)),
                           dtype=np.float64).reshape(n, dim)
            energies = np.zeros(n)
        steps.append({"population": pop, "population_energies": energies})
    return steps


@settings(max_examples=150, deadline=None)
@given(runs_of_steps(), st.integers(1, 6), st.sampled_from([0.5, 4.0]), st.booleans())
def test_every_step_decodes_exactly_in_order_and_from_its_keyframe(steps, key_steps, ratio, compress):
    enc = BulkEncoder(key_steps=key_steps, key_bytes_ratio=ratio, compress=compress)
    blobs = [enc.encode(seq, bulky) for seq, bulky in enumerate(steps)]
    expected = [None if b is None else flatten(b) for b in steps]
    # In order from the start
    for (seq, got), want in zip(decode_rows(enumerate(blobs)), expected):
        assert (got is None) == (want is None)
        if want is not None:
            assert same_dict(got, want), f"step {seq}"
    # Any step alone, from its keyframe onward (what the API does for one step)
    for seq, blob in enumerate(blobs):
        if blob is None:
            continue
        key = seq - keyframe_back(blob)
        assert blobs[key] is not None and is_keyframe(blobs[key])
        assert seq - key < key_steps
        *_, (_, got) = decode_rows((s, blobs[s]) for s in range(key, seq + 1))
        assert same_dict(got, expected[seq])
    nested = [None if b is None else unflatten(flatten(b)) for b in steps]
    assert all(n is None or same_dict(flatten(n), e) for n, e in zip(nested, expected))


def test_unchanged_members_cost_almost_nothing_and_a_few_changed_rows_stay_small():
    rng = np.random.default_rng(1)
    pop = rng.uniform(-5, 5, (150, 10))
    energies = rng.uniform(0, 100, 150)
    enc = BulkEncoder(key_steps=1000)
    key = enc.encode(0, {"population": pop, "population_energies": energies})
    assert is_keyframe(key) and len(key) > 150 * 11 * 8 * 0.9
    same_again = enc.encode(1, {"population": pop, "population_energies": energies})
    assert not is_keyframe(same_again) and len(same_again) <= 8
    pop2, e2 = pop.copy(), energies.copy()
    pop2[[3, 77]] += 1e-3
    e2[[3, 77]] -= 1.0
    delta = enc.encode(2, {"population": pop2, "population_energies": e2})
    assert len(delta) < 2 * (10 + 1) * 8 + 16
    dec = BulkDecoder()
    dec.decode(0, key)
    dec.decode(1, same_again)
    got = dec.decode(2, delta)
    assert same(got["population"], pop2) and same(got["population_energies"], e2)


def test_a_fresh_encoder_starts_with_a_keyframe_and_keyframes_come_every_k_steps():
    pop = np.arange(12.0).reshape(4, 3)
    enc = BulkEncoder(key_steps=5)
    flags = [is_keyframe(enc.encode(seq, {"population": pop})) for seq in range(12)]
    assert flags == [True, False, False, False, False] * 2 + [True, False]
    resumed = BulkEncoder(key_steps=5)  # a run resumed at step 12: its first blob is a keyframe
    assert is_keyframe(resumed.encode(12, {"population": pop}))


def test_the_decoder_refuses_a_delta_without_its_keyframe_and_damaged_blobs():
    enc = BulkEncoder()
    pop = np.ones((3, 2))
    key = enc.encode(0, {"population": pop})
    delta = enc.encode(1, {"population": pop * 2})
    with pytest.raises(BulkError, match="keyframe"):
        BulkDecoder().decode(1, delta)
    with pytest.raises(BulkError, match="version"):
        BulkDecoder().decode(0, b"\x09" + key[1:])
    with pytest.raises(BulkError):
        BulkDecoder().decode(0, key[:-3])
    with pytest.raises(ValueError, match="seq order"):
        enc.encode(1, {"population": pop})


def test_decoded_arrays_are_read_only():
    enc = BulkEncoder()
    got = BulkDecoder().decode(0, enc.encode(0, {"population": np.zeros((2, 2))}))
    with pytest.raises(ValueError):
        got["population"][0, 0] = 1.0
