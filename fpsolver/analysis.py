r"""Analyses of swept results: the flat-minima scaling of escape times with sharpness.

When a sweep varies the landscape's sharpness :math:`k` (``L_k(\theta) = f(\sqrt k\,\theta)``),
the escape time's dependence on :math:`k` says whether an optimizer prefers flat minima
(THEORY.md §5): :math:`\log\tau` linear in :math:`1/k` (SGD, momentum, Adai: sharp minima are
left exponentially faster) or in :math:`1/\sqrt k` (Adam). :func:`sharpness_fits` fits both
lines per group of the other swept keys and reports slope, intercept and the root-mean-square
residual of each (the smaller residual marks the scaling the data follow), for the PDE's escape
times and, where the runs have them, for the closed-form times (``theory_escape_time``) and the
simulated ones (``mean_escape_time``, the runs with a finite estimate), so the scalings can be
compared.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["sharpness_fits", "swept_keys", "escape_times", "moves_with", "series_keys", "group_labels", "FITTED_COLUMNS"]


#: Escape times fitted beside the PDE's: (variable, prefix of the fit variables, what it is).
FITTED_COLUMNS = (
    ("theory_escape_time", "theory_", "closed-form escape time"),
    ("mean_escape_time", "simulated_", "simulated mean escape time"),
)


def swept_keys(ds: xr.Dataset) -> list[str]:
    """Coordinates written by a sweep (``long_name`` "swept KEY"), in file order."""
    return [str(n) for n, c in ds.coords.items() if str(c.attrs.get("long_name", "")).startswith("swept ")]


def escape_times(ds: xr.Dataset) -> xr.DataArray | None:
    """The escape time of each run: ``mfpt_at_start``, else the first estimator's ``escape_time``."""
    if "mfpt_at_start" in ds:
        return ds["mfpt_at_start"]
    if "escape_time" in ds:
        return ds["escape_time"].isel(estimator=0)
    return None


def series_keys(ds: xr.Dataset, keys: list[str], of: str) -> list[str]:
    """The swept ``keys`` that split the runs into series against ``of``: those that do not move
    with it, leaving out task settings (``tasks.*``: how a run is computed, e.g. a simulation's
    particles per point, not what is computed)."""
    return [k for k in keys if k != of and not moves_with(ds, k, of) and not str(ds[k].attrs.get("long_name", "")).startswith("swept tasks.")]


def moves_with(ds: xr.Dataset, key: str, of: str) -> bool:
    """Whether swept ``key`` takes one value per value of ``of`` (it moves with it in a zip sweep)."""
    pairs = {(str(a), str(b)) for a, b in zip(ds[of].values, ds[key].values)}
    return len(pairs) == len({str(a) for a in ds[of].values})


def sharpness_fits(ds: xr.Dataset) -> xr.Dataset:
    """Fits of log(escape time) against 1/k and 1/sqrt(k) per group of the other swept keys.

    Returns an empty dataset when the sweep does not vary a ``sharpness`` or there are no times.
    Variables (dim ``group``, labelled by the other keys' values; keys a group leaves unset are
    not named): ``fit_slope_inv_k``, ``fit_intercept_inv_k``, ``fit_residual_inv_k`` and the same
    for ``inv_sqrt_k``; with closed-form times also ``fit_theory_*``, with simulated times
    ``fit_simulated_*`` (NaN for a group with fewer than three finite simulated times).
    """
    keys = swept_keys(ds)
    sharp = next((k for k in keys if k.endswith("sharpness")), None)
    times = escape_times(ds)
    if sharp is None or times is None:
        return xr.Dataset()
    dim = ds[sharp].dims[0]
    others = series_keys(ds, keys, sharp)
    labels = [label or "all" for label in group_labels(ds, others, dim)]
    groups = list(dict.fromkeys(labels))
    fitted = _fits(ds[sharp], times, dim, labels, groups, "", "escape time")
    for variable, prefix, what in FITTED_COLUMNS:
        if variable in ds:
            fitted = fitted.merge(_fits(ds[sharp], ds[variable], dim, labels, groups, prefix, what))
    return fitted


def group_labels(ds: xr.Dataset, keys: list[str], dim: str, with_keys: bool = True) -> list[str]:
    """``key=value, ...`` (or the values alone) per run along ``dim``; keys a run leaves unset
    (None, NaN, empty) are left out."""
    def is_set(value: object) -> bool:
        return not (value is None or str(value) in ("None", "nan", ""))

    def entry(k: str, value: object) -> str:
        return f"{k}={value}" if with_keys else str(value)

    return [", ".join(entry(k, ds[k].values[i]) for k in keys if is_set(ds[k].values[i])) for i in range(ds.sizes[dim])]


def _fits(sharpness: xr.DataArray, times: xr.DataArray, dim: str, labels: list[str], groups: list[str], prefix: str, what_time: str) -> xr.Dataset:
    """Least-squares lines of log(times) against 1/k and 1/sqrt(k), one per group."""
    fits: dict[str, list[float]] = {f"{what}_{scale}": [] for scale in ("inv_k", "inv_sqrt_k") for what in ("slope", "intercept", "residual")}
    for group in groups:
        index = np.array([i for i, lab in enumerate(labels) if lab == group])
        k = np.asarray(sharpness.values[index], dtype=float)
        log_tau = np.log(np.asarray(times.isel({dim: index}).values, dtype=float))
        usable = np.isfinite(log_tau) & (k > 0)
        for scale, x in (("inv_k", 1.0 / k), ("inv_sqrt_k", 1.0 / np.sqrt(k))):
            if usable.sum() >= 3:
                slope, intercept = np.polyfit(x[usable], log_tau[usable], 1)
                residual = float(np.sqrt(np.mean((slope * x[usable] + intercept - log_tau[usable]) ** 2)))
            else:
                slope = intercept = residual = np.nan
            fits[f"slope_{scale}"].append(float(slope))
            fits[f"intercept_{scale}"].append(float(intercept))
            fits[f"residual_{scale}"].append(residual)
    names = {"inv_k": "1/k", "inv_sqrt_k": "1/sqrt(k)"}
    variables = {}
    for key, values in fits.items():
        what, scale = key.split("_", 1)
        long = {"slope": "slope", "intercept": "intercept", "residual": "rms residual"}[what]
        variables[f"fit_{prefix}{key}"] = (("group",), np.array(values), {"long_name": f"{long} of log({what_time}) against {names[scale]}", "units": "1"})
    return xr.Dataset(variables, coords={"group": ("group", groups, {"long_name": "values of the other swept keys"})})
