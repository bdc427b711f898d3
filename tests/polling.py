"""Waiting for something another process does, with a bound."""

import time


def wait_until(predicate, timeout: float = 20.0, every: float = 0.01) -> bool:
    """True as soon as predicate() is; False if it still is not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False
