"""Standard figures of an fpsolver output dataset.

One panel per available result: the evolving density (snapshots in 1-D, the last
snapshot in 2-D), the stationary density, and the slowest eigenfunctions with their
rates. 3-D fields are shown as their marginal over the last axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .errors import InputError

__all__ = ["plot_dataset"]


def _spatial_dims(da: xr.DataArray) -> list[str]:
    return [d for d in da.dims if d not in ("time", "mode")]


def _reduce_to_2d(da: xr.DataArray) -> xr.DataArray:
    """Marginal over trailing spatial axes beyond two (integrated with the cell width)."""
    dims = _spatial_dims(da)
    for dim in dims[2:]:
        width = float(np.diff(da[dim].values).mean())
        da = da.sum(dim) * width
    return da


def _field(ax, da: xr.DataArray, title: str) -> None:
    da = _reduce_to_2d(da)
    dims = _spatial_dims(da)
    if len(dims) == 1:
        ax.plot(da[dims[0]].values, da.values)
        ax.set_xlabel(dims[0])
    else:
        mesh = ax.pcolormesh(da[dims[0]].values, da[dims[1]].values, da.transpose(dims[1], dims[0]).values, shading="auto")
        ax.figure.colorbar(mesh, ax=ax)
        ax.set_xlabel(dims[0])
        ax.set_ylabel(dims[1])
    ax.set_title(title)


def _rates(ax, ds: xr.Dataset) -> None:
    """Escape rates by method against 1/T (a temperature sweep), on top of the Kramers line."""
    rates = ds["escape_rate"]
    dim = "estimator" if "estimator" in rates.dims else "method"  # files written before the rename
    if "temperature" in rates.dims:
        inverse = 1.0 / ds["temperature"].values
        order = np.argsort(inverse)
        for marker, method in zip("os^vD", rates[dim].values):
            ax.semilogy(inverse[order], rates.sel({dim: method}).values[order], marker, label=str(method), fillstyle="none")
        if "kramers_rate" in ds:
            ax.semilogy(inverse[order], ds["kramers_rate"].values[order], "k-", label="Kramers")
        ax.set_xlabel("1 / T")
    else:
        methods = [str(m) for m in rates[dim].values]
        ax.semilogy(range(len(methods)), rates.values, "o", label="numerical")
        if "kramers_rate" in ds:
            ax.axhline(float(ds["kramers_rate"]), color="k", label="Kramers")
        ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("escape rate [1 / model time]")
    ax.set_title("escape rate")
    ax.legend(fontsize="small")


def plot_dataset(ds: xr.Dataset, output: str | Path) -> Path:
    """Draw the standard panels of ``ds`` into the image file ``output`` (format from its suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [name for name in ("p", "p_stationary", "eigenfunction", "escape_rate") if name in ds]
    if not panels:
        raise InputError("the dataset has none of the variables p, p_stationary, eigenfunction, escape_rate to plot")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, name in zip(axes[0], panels):
        da = ds[name]
        if name == "p" and len(_spatial_dims(da)) == 1:
            cmap = plt.get_cmap("viridis")
            times = da["time"].values
            for i, t in enumerate(times):
                ax.plot(da[_spatial_dims(da)[0]].values, da.isel(time=i).values, color=cmap(i / max(len(times) - 1, 1)), label=f"t={t:g}" if i in (0, len(times) - 1) else None)
            ax.set_xlabel(_spatial_dims(da)[0])
            ax.set_title("density p(t)")
            ax.legend()
        elif name == "p":
            _field(ax, da.isel(time=-1), f"density at t={float(da['time'][-1]):g}")
        elif name == "p_stationary":
            _field(ax, da, "stationary density")
        elif name == "escape_rate":
            _rates(ax, ds)
        elif len(_spatial_dims(da)) == 1:
            x = da[_spatial_dims(da)[0]].values
            for mode in da["mode"].values[1:]:
                ax.plot(x, da.sel(mode=mode).values, label=f"mode {mode}: rate {float(ds['rate'].sel(mode=mode)):.4g}")
            ax.set_xlabel(_spatial_dims(da)[0])
            ax.set_title("slowest eigenfunctions")
            ax.legend(fontsize="small")
        else:
            mode = 1 if da.sizes["mode"] > 1 else 0
            _field(ax, da.sel(mode=mode), f"eigenfunction {mode}, rate {float(ds['rate'].sel(mode=mode)):.4g}")
    fig.suptitle(str(ds.attrs.get("title", "")), fontsize="medium", wrap=True)
    fig.tight_layout()
    output = Path(output)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
