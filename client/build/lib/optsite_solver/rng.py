"""Random generators as scipy builds them, and their state as JSON."""
from __future__ import annotations

import numpy as np

__all__ = ["make_rng", "rng_state", "set_rng_state"]


def make_rng(seed, rng):
    """scipy's meanings: seed=int -> legacy RandomState(seed) (what differential_evolution(seed=)
    gives), rng=int -> default_rng(rng). Neither: scipy would use numpy's global RandomState;
    a private unseeded RandomState draws from the same distribution and can be checkpointed."""
    if seed is not None:
        return np.random.RandomState(seed)
    if rng is not None:
        return np.random.default_rng(rng)
    return np.random.RandomState()


def rng_state(gen) -> dict:
    if isinstance(gen, np.random.RandomState):
        st = gen.get_state(legacy=False)
        return {"kind": "RandomState", "bit_generator": st["bit_generator"],
                "state": {"key": st["state"]["key"].tolist(), "pos": int(st["state"]["pos"])},
                "has_gauss": int(st["has_gauss"]), "gauss": float(st["gauss"])}
    return {"kind": "Generator", **gen.bit_generator.state}


def set_rng_state(gen, state: dict) -> None:
    state = dict(state)
    kind = state.pop("kind")
    if kind == "RandomState":
        if not isinstance(gen, np.random.RandomState):
            raise ValueError("checkpoint holds a RandomState but the spec makes a Generator")
        gen.set_state({**state, "state": {"key": np.array(state["state"]["key"], dtype=np.uint32),
                                          "pos": state["state"]["pos"]}})
    else:
        if not isinstance(gen, np.random.Generator):
            raise ValueError("checkpoint holds a Generator but the spec makes a RandomState")
        gen.bit_generator.state = state
