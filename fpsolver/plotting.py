"""Standard figures of any fpsolver output dataset, sweeps included.

One panel per result, from the registry :data:`PANELS` (keyed by the variable that
triggers it), every axis labelled with its quantity and units:

``p``
    the evolving density coloured by time (a colour bar, not a legend); in 2-D and 3-D
    the marginal along the first axis over time, and a panel of the last snapshot.
``mass``
    probability conservation: :math:`|m(t) - m(0)|` and the negative mass, log scale.
``p_stationary``, ``mfpt``
    the field (curve in 1-D, image in 2-D, marginal over the last axes in 3-D).
``mfpt_at_start``
    (a sweep, or a run without the field) the time from the start per run; left to the
    optimizer-comparison panel when the dataset has ``theory_escape_time``.
``eigenfunction``
    the slowest eigenfunctions with their rates.
``escape_rate``
    rates by estimator beside the closed-form (Kramers) line (files written before the
    dimension was renamed ``method`` -> ``estimator`` are read too).
``theory_escape_time``, ``well_variance_pde``
    an optimizer comparison: per run (optimizer), the escape time from the PDE, the
    simulator (with its confidence interval) and the closed form, in iterations; the
    variance in the start's well likewise.

A sweep (coordinates whose ``long_name`` starts with "swept") puts its first swept
key on the horizontal axis of every scalar result (rates, ``mfpt_at_start``,
relaxation rates; 1/T for a temperature) with one colour per value of the other
keys; fields are drawn per run in one colour each. Runs that failed (all NaN) and
NaN theory lines get no legend entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .analysis import group_labels, series_keys, swept_keys
from .errors import InputError

__all__ = ["plot_dataset", "draw", "PANELS", "Sweep"]

ESTIMATOR_DIMS = ("estimator", "method")


@dataclass(frozen=True)
class Sweep:
    """How the runs of a sweep are laid out: along ``dim``, first key ``x``, colours by ``groups``."""

    dim: str
    x: str
    groups: list[tuple[str, np.ndarray]]

    @classmethod
    def of(cls, ds: xr.Dataset) -> Sweep | None:
        keys = swept_keys(ds)
        if not keys:
            return None
        dim = ds[keys[0]].dims[0]
        others = series_keys(ds, keys, keys[0])  # zipped keys and task settings are not separate series
        if not others:
            return cls(dim, keys[0], [("", np.arange(ds.sizes[dim]))])
        # names alone read well ("adam"); numbers need their key ("batch_size=4")
        numeric = any(np.issubdtype(ds[k].dtype, np.number) for k in others)
        labels = group_labels(ds, others, dim, with_keys=numeric)
        groups = [(label, np.array([i for i, lab in enumerate(labels) if lab == label])) for label in dict.fromkeys(labels)]
        return cls(dim, keys[0], groups)

    def categories(self, ds: xr.Dataset) -> list[str] | None:
        """The swept values as tick labels when they are not numbers (e.g. optimizer kinds)."""
        values = ds[self.x].values
        return None if np.issubdtype(values.dtype, np.number) else [str(v) for v in values]

    def abscissa(self, ds: xr.Dataset) -> tuple[np.ndarray, str]:
        """Values for the horizontal axis and its label (1/T for a temperature; positions for names)."""
        if self.categories(ds) is not None:
            return np.arange(ds.sizes[self.dim], dtype=float), _label(ds[self.x], self.x)
        values = np.asarray(ds[self.x].values, dtype=float)
        if self.x.endswith("temperature"):
            return 1.0 / values, "1 / T"
        if self.x.endswith("sharpness"):
            return 1.0 / values, "1 / k (k: sharpness)"
        return values, _label(ds[self.x], self.x)

    def run_label(self, ds: xr.Dataset, i: int) -> str:
        swept = swept_keys(ds)
        return ", ".join(f"{k}={ds[k].values[i]:g}" if np.issubdtype(ds[k].dtype, np.number) else f"{k}={ds[k].values[i]}" for k in swept)


def _units(da: xr.DataArray) -> str:
    """Units for a label: the prose form when there is one, without its parenthesised remarks."""
    text = str(da.attrs.get("units_note", da.attrs.get("units", ""))).removeprefix("nondimensional model units: ")
    return re.sub(r"\s*\(for [^()]*\)", "", text)


def _label(da: xr.DataArray, fallback: str = "") -> str:
    """``long name [units]`` for an axis label."""
    name = str(da.attrs.get("long_name", fallback or da.name))
    units = _units(da)
    return f"{name} [{units}]" if units else name


def _spatial_dims(da: xr.DataArray) -> list[str]:
    return [str(d) for d in da.dims if d in da.coords and "axis_kind" in da[d].attrs]


def _marginal(da: xr.DataArray, keep: int) -> xr.DataArray:
    """Integrate over the spatial axes after the first ``keep`` (cell widths from the coordinates)."""
    for dim in _spatial_dims(da)[keep:]:
        width = float(np.diff(da[dim].values).mean()) if da.sizes[dim] > 1 else 1.0
        da = da.sum(dim, skipna=False) * width
    return da


#: Legend entries above which the legend goes beside the panel instead of over its data.
LEGEND_INSIDE = 3


def _legend(ax: Any) -> None:
    handles = ax.get_legend_handles_labels()[0]
    if not handles:
        return
    if len(handles) <= LEGEND_INSIDE:
        ax.legend(fontsize="small")
    else:  # a sweep's many series: beside the panel (draw() widens the figure for it)
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _series_label(values: np.ndarray, label: str | None) -> str | None:
    """No legend entry for an all-NaN line."""
    return label if np.any(np.isfinite(values)) else None


def _field(ax: Any, da: xr.DataArray, title: str) -> None:
    """A curve (1-D) or an image (2-D; higher: marginal onto the first two axes)."""
    da = _marginal(da, 2)
    dims = _spatial_dims(da)
    x = da[dims[0]]
    if len(dims) == 1:
        ax.plot(x.values, da.values)
        ax.set_ylabel(_label(da))
    else:
        y = da[dims[1]]
        mesh = ax.pcolormesh(x.values, y.values, da.transpose(dims[1], dims[0]).values, shading="auto")
        ax.figure.colorbar(mesh, ax=ax, label=_label(da))
        ax.set_ylabel(_label(y, dims[1]))
    ax.set_xlabel(_label(x, dims[0]))
    ax.set_title(title)


def _run_field(da: xr.DataArray, sweep: Sweep, i: int) -> xr.DataArray:
    """Run ``i``'s field on its own grid (a sweep of grid keys pads other runs' cells with NaN)."""
    run = da.isel({sweep.dim: i})
    for dim in _spatial_dims(run):
        run = run.dropna(dim, how="all") if np.any(np.isfinite(run.values)) else run
    return run


def _fields_per_run(ax: Any, da: xr.DataArray, sweep: Sweep, ds: xr.Dataset, title: str) -> None:
    """One curve per sweep run (1-D marginal on the run's own grid), coloured by run."""
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("viridis")
    n = da.sizes[sweep.dim]
    for i in range(n):
        run = _marginal(_run_field(da, sweep, i), 1)
        x = run[_spatial_dims(run)[0]]
        ax.plot(x.values, run.values, color=colours(i / max(n - 1, 1)), label=_series_label(run.values, sweep.run_label(ds, i)))
    ax.set_xlabel(_label(da[_spatial_dims(da)[0]]))
    ax.set_ylabel(_label(da) + (" (marginal)" if len(_spatial_dims(da)) > 1 else ""))
    ax.set_title(title)
    _legend(ax)


def _against_sweep(ax: Any, ds: xr.Dataset, sweep: Sweep, series: list[tuple[str, xr.DataArray, str]], log: bool, intervals: dict[str, xr.DataArray] | None = None) -> None:
    """Scalar results per run against the first swept key; one marker per series, one colour per group.

    ``intervals`` maps a series name to its confidence interval (dims: the sweep's and ``bound``),
    drawn as error bars."""
    import matplotlib.pyplot as plt

    x, xlabel = sweep.abscissa(ds)
    colours = plt.get_cmap("tab10")
    for g, (group, index) in enumerate(sweep.groups):
        order = index[np.argsort(x[index])]
        for name, da, style in series:
            values = np.asarray(da.isel({sweep.dim: order}).values, dtype=float)
            label = ", ".join(part for part in (name, group) if part)
            colour = "k" if style.endswith("-") and len(sweep.groups) == 1 else colours(g % 10)
            if intervals and name in intervals:
                bounds = np.asarray(intervals[name].isel({sweep.dim: order}).transpose(sweep.dim, "bound").values, dtype=float)
                err = np.abs(np.stack([values - bounds[:, 0], bounds[:, 1] - values]))
                ax.errorbar(x[order], values, yerr=err, fmt=style, color=colour, fillstyle="none", capsize=3, label=_series_label(values, label))
            else:
                ax.plot(x[order], values, style, color=colour, fillstyle="none", label=_series_label(values, label))
    if log:
        ax.set_yscale("log")
    finite = x[np.isfinite(x)]
    if finite.size and finite.min() > 0 and finite.max() > 100 * finite.min():
        ax.set_xscale("log")  # e.g. damping over three decades
    ax.set_xlabel(xlabel)
    names = sweep.categories(ds)
    if names is not None:
        ax.set_xticks(x, names)


def _density(ax: Any, ds: xr.Dataset, sweep: Sweep | None) -> None:
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    da = ds["p"]
    if sweep is not None:
        _fields_per_run(ax, da.isel(time=-1), sweep, ds, f"density at t={float(ds['time'][-1]):g}, per run")
        return
    marginal = _marginal(da, 1)
    x = marginal[_spatial_dims(marginal)[0]]
    times = ds["time"].values
    norm = mpl.colors.Normalize(float(times.min()), float(times.max()) if times.max() > times.min() else float(times.min()) + 1)
    cmap = plt.get_cmap("viridis")
    for i, t in enumerate(times):
        ax.plot(x.values, marginal.isel(time=i).values, color=cmap(norm(t)))
    ax.figure.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=_label(ds["time"]))
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(da) + (" (marginal)" if len(_spatial_dims(da)) > 1 else ""))
    ax.set_title("density p(t)")


def _last_snapshot(ax: Any, ds: xr.Dataset, sweep: Sweep | None) -> None:
    da = ds["p"].isel(time=-1)
    if sweep is not None:
        da = _run_field(da, sweep, 0)
    _field(ax, da, f"density at t={float(ds['time'][-1]):g}" + (f" ({sweep.run_label(ds, 0)})" if sweep else ""))


def _mass(ax: Any, ds: xr.Dataset, sweep: Sweep | None) -> None:
    drift = abs(ds["mass"] - ds["mass"].isel(time=0))
    curves = [("|mass(t) - mass(0)|", drift, "-")]
    if "negative_mass" in ds:
        curves.append(("negative mass", ds["negative_mass"], "--"))
    runs = range(ds.sizes[sweep.dim]) if sweep is not None else [None]
    for i in runs:
        for name, da, style in curves:
            values = np.asarray((da if i is None else da.isel({sweep.dim: i})).values, dtype=float)
            label = name if i is None else f"{name}, {sweep.run_label(ds, i)}"
            # zeros (exact conservation) cannot go on a log axis: floor at 1e-18
            ax.semilogy(ds["time"].values, np.maximum(values, 1e-18), style, label=_series_label(values, label))
    ax.set_xlabel(_label(ds["time"]))
    ax.set_ylabel("probability [1] (floored at 1e-18)")
    ax.set_title("probability conservation")
    _legend(ax)


def _stationary(ax: Any, ds: xr.Dataset, sweep: Sweep | None) -> None:
    da = ds["p_stationary"]
    if sweep is None:
        _field(ax, da, "stationary density")
    else:
        _fields_per_run(ax, da, sweep, ds, "stationary density, per run")


def _spectrum(ax: Any, ds: xr.Dataset, sweep: Sweep | None) -> None:
    modes = ds["mode"].values[1:] if ds.sizes["mode"] > 1 else ds["mode"].values
    if sweep is not None:
        series = [(f"mode {m}", ds["rate"].sel(mode=m), "o-") for m in modes]
        _against_sweep(ax, ds, sweep, series, log=True)
        ax.set_ylabel(_label(ds["rate"]))
        ax.set_title("relaxation rates")
        _legend(ax)
        return
    da = ds["eigenfunction"]
    if len(_spatial_dims(da)) == 1:
        x = da[_spatial_dims(da)[0]]
        for mode in modes:
            ax.plot(x.values, da.sel(mode=mode).values, label=f"mode {mode}: rate {float(ds['rate'].sel(mode=mode)):.4g}")
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_label(da))
        ax.set_title("slowest eigenfunctions")
        _legend(ax)
    else:
        mode = modes[0]
        _field(ax, da.sel(mode=mode), f"eigenfunction {mode}, rate {float(ds['rate'].sel(mode=mode)):.4g}")


def _mfpt(ax: Any, ds: xr.Dataset, sweep: Sweep | None) -> None:
    if sweep is None and "mfpt" not in ds:  # one run that kept only the time from its start (field: false)
        _comparison(ax, ds, sweep, [("from the start", "mfpt_at_start", None, "o")], _label(ds["mfpt_at_start"], "mean first-passage time from the start"), "mean first-passage time")
        ax.set_xlabel("model")
    elif sweep is not None and "mfpt_at_start" in ds:
        series = [("from the start", ds["mfpt_at_start"], "o-")]
        if "theory_escape_time" in ds:
            series.append(("closed form", ds["theory_escape_time"], "x--"))
        _against_sweep(ax, ds, sweep, series, log=True)
        ax.set_ylabel(_label(ds["mfpt_at_start"], "mean first-passage time from the start"))
        ax.set_title("mean first-passage time")
        _legend(ax)
    elif sweep is not None:
        _fields_per_run(ax, ds["mfpt"], sweep, ds, "mean first-passage time, per run")
    else:
        _field(ax, ds["mfpt"], "mean first-passage time")


#: Closed-form rate columns ``theory_NAME`` drawn beside the estimators, with their line styles.
THEORY_LINES = {"kramers_moderate": "--", "energy_diffusion": ":"}


def _escape_rate(ax: Any, ds: xr.Dataset, sweep: Sweep | None) -> None:
    rates = ds["escape_rate"]
    dim = next(d for d in ESTIMATOR_DIMS if d in rates.dims)
    names = [str(m) for m in rates[dim].values]
    if sweep is not None:
        series = [(name, rates.sel({dim: name}), marker) for name, marker in zip(names, "os^vDx+")]
        if "kramers_rate" in ds:
            series.append(("theory", ds["kramers_rate"], "-"))
        ceiling = 3.0 * float(np.nanmax(np.where(np.isfinite(rates.values), rates.values, np.nan))) if np.isfinite(rates.values).any() else np.inf
        for name, style in THEORY_LINES.items():  # further closed forms: asymptotes, drawn where they are near the data
            if f"theory_{name}" in ds:
                line = ds[f"theory_{name}"]
                series.append((name.replace("_", " "), line.where(line <= ceiling), style))
        _against_sweep(ax, ds, sweep, series, log=True)
    else:
        values = np.asarray(rates.values, dtype=float)
        ax.semilogy(range(len(names)), values, "o", label=_series_label(values, "numerical"))
        if "kramers_rate" in ds and np.isfinite(float(ds["kramers_rate"])):
            ax.axhline(float(ds["kramers_rate"]), color="k", label="theory")
        ax.set_xticks(range(len(names)), names)
        ax.set_xlabel(dim)
    ax.set_ylabel(_label(rates))
    ax.set_title("escape rate")
    _legend(ax)


def _per_run(ds: xr.Dataset, sweep: Sweep | None) -> tuple[np.ndarray, list[str], str | None]:
    """Positions, tick labels (with the model's dynamics when recorded) and the sweep dimension of a per-run comparison."""
    if sweep is None:
        labels, dim = [str(ds.attrs.get("model_kind", "run"))], None
    else:
        dim = sweep.dim
        labels = sweep.categories(ds) or [sweep.run_label(ds, i) for i in range(ds.sizes[dim])]
    if "dynamics" in ds:
        labels = [f"{lab}\n({d})" for lab, d in zip(labels, np.atleast_1d(ds["dynamics"].values))]
    return np.arange(len(labels), dtype=float), labels, dim


def _comparison(ax: Any, ds: xr.Dataset, sweep: Sweep | None, series: list[tuple[str, str, str | None, str]], ylabel: str, title: str) -> None:
    """Side-by-side markers per run: (label, variable, its confidence-interval variable or None, marker)."""
    x, labels, dim = _per_run(ds, sweep)
    shown = [(name, var, ci, marker) for name, var, ci, marker in series if var in ds]
    for k, (name, var, ci, marker) in enumerate(shown):
        offset = (k - (len(shown) - 1) / 2) * 0.12
        values = np.atleast_1d(np.asarray(ds[var].squeeze(drop=True).values, dtype=float))
        if ci is not None and ci in ds:
            bounds = np.asarray(ds[ci].squeeze(drop=True).transpose(*((dim,) if dim else ()), "bound").values, dtype=float).reshape(-1, 2)
            err = np.abs(np.stack([values - bounds[:, 0], bounds[:, 1] - values]))
            ax.errorbar(x + offset, values, yerr=err, fmt=marker, capsize=4, label=_series_label(values, name))
        else:
            ax.plot(x + offset, values, marker, label=_series_label(values, name))
    ax.set_xticks(x, labels)
    ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _legend(ax)


def _optimizer_escape(ax: Any, ds: xr.Dataset, sweep: Sweep | None) -> None:
    """Escape time per optimizer: PDE, simulator (with its interval) and closed form, in iterations when known."""
    iterations = any(name in ds for name in ("theory_escape_iterations", "mean_escape_iterations", "mfpt_at_start_iterations"))
    suffix = "_iterations" if iterations else ""
    time_label = "escape time [iterations]" if iterations else _label(next(ds[v] for v in ("theory_escape_time", "mean_escape_time", "mfpt_at_start") if v in ds))
    series = [
        ("PDE (mfpt)", f"mfpt_at_start{suffix}" if iterations else "mfpt_at_start", None, "o"),
        ("simulator (95 % CI)", f"mean_escape{suffix or '_time'}", f"mean_escape{suffix or '_time'}_ci", "s"),
        ("theory (Kramers, local T)", f"theory_escape{suffix or '_time'}", None, "D"),
    ]
    if sweep is not None and sweep.categories(ds) is None:  # a numeric sweep (sharpness, temperature): lines on a log axis
        lines = [(name, ds[var], style) for (name, var, _, _), style in zip(series, ("o-", "s", "x--")) if var in ds]
        intervals = {name: ds[ci] for name, var, ci, _ in series if var in ds and ci is not None and ci in ds}
        _against_sweep(ax, ds, sweep, lines, log=True, intervals=intervals)
        ax.set_ylabel(time_label)
        ax.set_title("escape time from the start's well")
        _legend(ax)
        return
    _comparison(ax, ds, sweep, series, time_label, "escape time from the start's well")


def _optimizer_variance(ax: Any, ds: xr.Dataset, sweep: Sweep | None) -> None:
    """Variance in the start's well per optimizer: quasi-stationary PDE, surviving particles, harmonic theory."""
    series = [
        ("PDE (quasi-stationary)", "well_variance_pde", None, "o"),
        ("simulator (95 % CI)", "well_variance_simulated", "well_variance_simulated_ci", "s"),
        ("harmonic theory T/H", "well_variance_theory", None, "D"),
    ]
    _comparison(ax, ds, sweep, series, "variance of theta [1]", "variance in the start's well")


Panel = Callable[[Any, xr.Dataset, "Sweep | None"], None]

#: Panels by the variable that calls for them, in drawing order (a panel is drawn once). A panel
#: needs its key variable; ``_last_snapshot`` draws only for fields of two or more axes.
PANELS: dict[str, list[Panel]] = {
    "p": [_density, _last_snapshot],
    "mass": [_mass],
    "p_stationary": [_stationary],
    "eigenfunction": [_spectrum],
    "mfpt": [_mfpt],
    "mfpt_at_start": [_mfpt],
    "escape_rate": [_escape_rate],
    "theory_escape_time": [_optimizer_escape],
    "mean_escape_time": [_optimizer_escape],
    "well_variance_pde": [_optimizer_variance],
}


#: Variables whose panel is left out when the dataset has one of these others, whose panel shows them too.
SHOWN_BY = {"mfpt_at_start": ("theory_escape_time", "mean_escape_time")}


def _panels(ds: xr.Dataset) -> list[Panel]:
    chosen: list[Panel] = []
    for name, panels in PANELS.items():
        if name not in ds or any(other in ds for other in SHOWN_BY.get(name, ())):
            continue
        for panel in panels:
            if panel in chosen or (panel is _last_snapshot and len(_spatial_dims(ds["p"])) < 2):
                continue
            chosen.append(panel)
    return chosen


def plot_dataset(ds: xr.Dataset, output: str | Path) -> Path:
    """Draw the standard panels of ``ds`` into the image file ``output`` (format from its suffix)."""
    import matplotlib.pyplot as plt

    fig = draw(ds)
    output = Path(output)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def draw(ds: xr.Dataset) -> Any:
    """The matplotlib figure of :func:`plot_dataset` (Agg backend; close it when done)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(ds)
    if not panels:
        raise InputError(f"the dataset has none of the variables {', '.join(PANELS)} to plot")
    sweep = Sweep.of(ds)
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.4 * columns, 4.3 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        panel(ax, ds, sweep)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    failed = int(sum(bool(e) for e in ds["run_error"].values)) if "run_error" in ds else 0
    title = str(ds.attrs.get("title", "")) + (f" ({failed} sweep run(s) failed: see run_error)" if failed else "")
    fig.suptitle(title, fontsize="medium", wrap=True)
    beside = sum(len(ax.get_legend_handles_labels()[0]) > LEGEND_INSIDE for ax in axes[0])
    if beside:  # room for the legends beside their panels, the panels keeping their size
        fig.set_figwidth(fig.get_figwidth() + 3.2 * beside)
    fig.tight_layout()
    return fig
