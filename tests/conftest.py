"""Shared helpers for the fpsolver tests."""

from __future__ import annotations

import numpy as np
import pytest


def slope(hs, errors) -> float:
    """Least-squares slope of log(error) against log(h): the observed convergence order."""
    return float(np.polyfit(np.log(np.asarray(hs, float)), np.log(np.asarray(errors, float)), 1)[0])


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)
