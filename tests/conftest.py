"""Shared helpers for the fpsolver tests."""

from __future__ import annotations

import contextlib
import signal

import numpy as np
import pytest


def slope(hs, errors) -> float:
    """Least-squares slope of log(error) against log(h): the observed convergence order."""
    return float(np.polyfit(np.log(np.asarray(hs, float)), np.log(np.asarray(errors, float)), 1)[0])


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail the test (instead of hanging) when the block runs longer than ``seconds``.

    Uses SIGALRM, so the block must run Python code in the main thread (it does in
    every test that uses this: parsing and validation never release control to C
    for long — which is exactly what these tests check).
    """

    def expired(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
