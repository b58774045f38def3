"""Fuzzing the expression parser and the scenario loader.

Whatever the input: an answer or an :class:`InputError` within a second (guarded by
SIGALRM inside each case), never another exception, and never code run (a sentinel
file that several inputs try to create must not appear). Hypothesis runs derandomised
so CI is reproducible; 200 cases each.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fpsolver.errors import InputError
from fpsolver.expressions import lambdify, parse_condition, parse_expression
from fpsolver.scenario import loads_scenario

from .conftest import time_limit
from .test_scenario import GOOD

SENTINEL = "/tmp/fpsolver_fuzz_pwned"
ATTACK = f"__import__('os').system('touch {SENTINEL}')"

TOKENS = [
    "x", "y", "1", "0", "9", "10", "2.5", "1e308", "1e-320", "e", "pi", "+", "-", "*", "/", "**", "%", "^",
    "(", ")", ",", " ", "exp", "log", "sqrt", "sin", "abs", "min", "max", "erf", "<", ">=", " and ", " not ",
    "lambda", ":", "[", "]", ".", "__class__", "'", '"', ATTACK, "9**9**9", "1/0",
]  # fmt: skip

@pytest.fixture(scope="module", autouse=True)
def warm_up(tmp_path_factory):
    """Import and compile once outside the timed cases (the first load takes ~0.5 s)."""
    loads_scenario(GOOD, "warm.yaml", tmp_path_factory.mktemp("warm") / "out.nc")


FUZZ = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

expressions = st.one_of(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join), st.text(max_size=40))


@FUZZ
@given(expressions)
def test_expression_parser_answers_or_refuses_fast(text):
    with time_limit(1.0):
        try:
            expr = parse_expression(text, ["x", "y"])
        except InputError:
            pass
        else:
            # An accepted expression evaluates (NaN/inf allowed here: the grid check refuses them).
            value = lambdify(expr, ["x", "y"])(np.linspace(-2, 2, 5), np.zeros(5))
            assert value.shape == (5,)
        try:
            parse_condition(text, ["x", "y"])
        except InputError:
            pass
    assert not os.path.exists(SENTINEL)


VALUES = [
    "0", "-1", "3", "1.0e-300", "1.0e+300", ".nan", ".inf", "1000000000000", "null", "true", "[]", "{}", "[1, 2]",
    '"x"', '"9**9**9**9"', '"1/0"', '"sqrt(x)"', '"exp(exp(100*x))"', f'"{ATTACK}"', "&a [1, *a]", "*undefined",
    f"!!python/object/apply:os.system ['touch {SENTINEL}']", "[", "{", "'unclosed", "time", "-1e999",
]  # fmt: skip

#: Places in GOOD (see test_scenario.py) whose value the fuzzer replaces.
SLOTS = ["-2.0", "2.0", "50", "0.1", "[-1.0]", "[0.2]", "1.0", "bdf2", '"x**4/4 - x**2/2"', "overdamped", "{}", "good"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(SLOTS), st.sampled_from(VALUES)), min_size=1, max_size=4), st.integers(0, 3))
def test_scenario_loader_answers_or_refuses_fast(tmp_path_factory, edits, extra):
    text = GOOD
    for slot, value in edits:
        text = text.replace(slot, value, 1)
    text += ["", "sweep:\n  model.temperature: [0.1, -1]\n", "x: &b [*b]\n", "grid2: {time: 1}\n"][extra]
    out = tmp_path_factory.mktemp("fuzz") / "out.nc"
    with time_limit(1.0):
        try:
            loads_scenario(text, "fuzz.yaml", out)
        except InputError:
            pass
    assert not os.path.exists(SENTINEL) and not out.exists()
