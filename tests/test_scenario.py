"""Scenario files: every bad input gets one located line FILE:LINE: key.path: message."""

from __future__ import annotations

import pytest

from fpsolver.errors import ScenarioError
from fpsolver.scenario import load_scenario, loads_scenario
from fpsolver.scenario.yamlfile import MAX_ALIASES, MAX_VALUES

from .conftest import time_limit

GOOD = """\
name: good
landscape:
  expression: "x**4/4 - x**2/2"
grid:
  x: {min: -2.0, max: 2.0, n: 50}
model:
  kind: overdamped
  temperature: 0.1
initial:
  gaussian: {mean: [-1.0], std: [0.2]}
tasks:
  evolve: {t_end: 1.0, dt: 0.1, scheme: bdf2}
  stationary: {}
"""


def _problem(text: str, tmp_path) -> tuple[str, str]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, tmp_path / "out.nc")
    assert len(info.value.problems) >= 1
    where, message = info.value.problems[0]
    return where.replace(str(path), "F"), message


def test_good_scenario_loads(tmp_path):
    scenario = loads_scenario(GOOD, "good.yaml", tmp_path / "out.nc")
    assert scenario.problem.grid.shape == (50,) and scenario.initial is not None
    assert "temperature: 0.1" in scenario.resolved_yaml() and "convention: ito" in scenario.resolved_yaml()


# (replace this, with that) -> expected location and a piece of the message
BAD = [
    ("  temperature: 0.1\n", "  temperature: 0.1\n  colour: red\n", "F:9: model.colour", "unknown key"),
    ("  temperature: 0.1\n", "  temperature: -0.1\n", "F:8: model.temperature", "greater than 0"),
    ("  temperature: 0.1\n", "  temperature: hot\n", "F:8: model.temperature", "valid number"),
    ("  temperature: 0.1\n", "  temperature: true\n", "F:8: model.temperature", "valid number"),
    ("n: 50}", "n: 2}", "F:5: grid.x.n", "greater than or equal to 3"),
    ("{min: -2.0, max: 2.0", "{min: 2.0, max: -2.0", "F:5: grid.x.max", "greater than min"),
    ('"x**4/4 - x**2/2"', '"x**4/4 - (x"', "F:3: landscape.expression", "syntax error"),
    ('"x**4/4 - x**2/2"', "\"__import__('os').system('touch /tmp/fpsolver_pwned')\"", "F:3: landscape.expression", "only these functions may be called"),
    ('"x**4/4 - x**2/2"', '"x**4 + z"', "F:3: landscape.expression", "unknown name 'z'"),
    ("  temperature: 0.1\n", '  diffusion: "x"\n', "F:8: model.diffusion", "positive definite"),
    ("  temperature: 0.1\n", "  temperature: 0.1\n  diffusion: 0.2\n", "F:6: model", "exactly one"),
    ("mean: [-1.0]", "mean: [-1.0, 0.0]", "F:10: initial.gaussian", "needs 1 value"),
    ("dt: 0.1,", "dt: 0.3,", "F:12: tasks.evolve.t_end", "whole multiple"),
    ("scheme: bdf2", "scheme: rk4", "F:12: tasks.evolve.scheme", "unknown scheme"),
    ("  kind: overdamped\n", "  kind: newtonian\n", "F:7: model.kind", "choose one of overdamped, inertial"),
    ("name: good\n", "name: ../evil\n", "F:1: name", "letters, digits"),
    ("tasks:\n", "boundary: absorbing\ntasks:\n", "F:14: tasks.stationary", "absorbing"),
    ("initial:\n  gaussian: {mean: [-1.0], std: [0.2]}\n", "", "F:10: tasks.evolve", "needs an 'initial'"),
    ("  x: {min", "  y: {min", "F:3: landscape.expression", "unknown name 'x'"),
    ("tasks:\n", "tasks:\n  stationary: {}\n", "F:14: tasks.stationary", "duplicate key (first given on line 12)"),
]


@pytest.mark.parametrize("old, new, where, message", BAD, ids=[b[2].split(": ", 1)[1] + "|" + b[3] for b in BAD])
def test_bad_scenarios_are_located(old, new, where, message, tmp_path):
    assert old in GOOD
    got_where, got_message = _problem(GOOD.replace(old, new, 1), tmp_path)
    assert got_where == where and message in got_message, (got_where, got_message)
    assert "\n" not in got_message


def test_library_landscape_errors_are_located(tmp_path):
    text = GOOD.replace('  expression: "x**4/4 - x**2/2"\n', "  kind: banana\n")
    where, message = _problem(text, tmp_path)
    assert where == "F:3: landscape.kind" and "unknown landscape kind 'banana'" in message
    text = GOOD.replace('  expression: "x**4/4 - x**2/2"\n', "  kind: double_well\n  height: -1\n")
    where, message = _problem(text, tmp_path)
    assert where == "F:4: landscape.height" and "greater than 0" in message


@pytest.mark.parametrize(
    "text, where, message",
    [
        ("", "F:1", "empty"),
        ("name: [unclosed\n", "F:2", "YAML syntax error"),
        ("- just\n- a list\n", "F:1", "mapping"),
        ("name: x\n", "F:1: landscape", "required key is missing"),
    ],
)
def test_broken_files(text, where, message, tmp_path):
    got_where, got_message = _problem(text, tmp_path)
    assert got_where.startswith(where) and message in got_message, (got_where, got_message)


def _laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs" anchor bomb: ``width**levels`` strings from a few lines."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text, where, message",
    [
        (_laughs(9), "F:6", f"more than {MAX_VALUES} values"),  # 9**9 = 3.9e8 strings (was 50 s, 5 GB)
        ("a: &a [1]\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n", "F:2", f"more than {MAX_ALIASES} YAML aliases"),
        ("a: &a [*a]\n", "F:1", "refers to its own anchor"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "F:1", "nested more than 50 levels deep"),  # was 1.2 s in the scanner
        ("a:\n" + "".join(" " * i + "- \n" for i in range(1, 1000)), "F:1", "nested too deeply"),  # block nesting: 0.2 s
    ],
)
def test_yaml_bombs_are_refused_fast(text, where, message, tmp_path):
    with time_limit(2.0):  # measured <= 0.2 s each (shared machine: 10x margin); the bomb used to take 50 s
        got_where, got_message = _problem(text, tmp_path)
    assert got_where == where and message in got_message, (got_where, got_message)


def test_a_few_aliases_still_work(tmp_path):
    text = GOOD.replace("name: good", "name: &name good\ntitle: *name")
    assert loads_scenario(text, "a.yaml", tmp_path / "o.nc").spec.title == "good"


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "output, message",
    [("README.txt", "should end in .nc"), ("sub", "is a directory"), ("file.txt/out.nc", "not a directory"), ("/proc/nope/out.nc", "refuses new files")],
)
def test_unwritable_outputs(output, message, tmp_path):
    (tmp_path / "sub.nc").mkdir()
    (tmp_path / "file.txt").write_text("x")
    # /proc: os.access says writable to root, yet nothing can be created there (was an
    # internal error after the computation)
    target = {"README.txt": "README.txt", "sub": "sub.nc", "file.txt/out.nc": "file.txt/out.nc", "/proc/nope/out.nc": "/proc/nope/out.nc"}[output]
    path = tmp_path / "s.yaml"
    path.write_text(GOOD + f"output: {tmp_path / target}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    where, text = info.value.problems[0]
    assert where == f"{path}:14: output" and message in text


@pytest.mark.parametrize(
    "old, new, where, message",
    [
        # 50 cells on [-2, 2]: the first centre is -1.96; half the cells have x < 0.
        ('"x**4/4 - x**2/2"', '"sqrt(x)"', "F:3: landscape.expression", "the landscape is not finite (nan) at x=-1.96 (and at 24 more"),
        ('"x**4/4 - x**2/2"', '"log(x) + x**2"', "F:3: landscape.expression", "the landscape is not finite (nan) at x=-1.96"),
        # exp(exp(100 x)) overflows from x ~ 0.066 on: the first such centre is 0.12.
        ('"x**4/4 - x**2/2"', '"exp(exp(100*x))"', "F:3: landscape.expression", "not finite (inf) at x=0.12"),
        ("temperature: 0.1", 'diffusion: "sqrt(x + 1)"', "F:8: model.diffusion", "diffusion is not finite (nan) at x=-1.96 (and at 11 more"),
        ("temperature: 0.1", 'temperature: 0.1\n  mobility: ["1", "log(x)"]', "F:10: model.mobility", "mobility is not finite (nan) at x=-1.96, y=-1.5"),
    ],
)
def test_nonfinite_fields_are_refused_at_the_first_bad_cell(old, new, where, message, tmp_path):
    text = GOOD.replace(old, new)
    if "mobility: [" in new:
        text = text.replace("  x: {min: -2.0, max: 2.0, n: 50}", "  x: {min: -2.0, max: 2.0, n: 50}\n  y: {min: -2.0, max: 2.0, n: 4}")
    got_where, got_message = _problem(text, tmp_path)
    assert got_where == where and message in got_message, (got_where, got_message)


def test_nonfinite_gradient_is_refused(tmp_path):
    # exp(-exp(100 x)) evaluates to 0 where exp(100 x) overflows, but its gradient
    # -100 exp(100 x) exp(-exp(100 x)) is inf * 0 = nan there (from x ~ 7.1 on: not on
    # this grid; scaled by 1000 it starts at x ~ 0.0071, the first centre being 0.04).
    text = GOOD.replace('"x**4/4 - x**2/2"', '"exp(-exp(100000*x))"')
    got_where, got_message = _problem(text, tmp_path)
    assert got_where == "F:3: landscape.expression" and "the landscape gradient is not finite (nan) at x=0.04" in got_message, got_message
