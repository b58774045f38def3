"""How many cores and threads the numerical libraries may use (for ``fpsolver info`` and output attrs).

The count that matters on a shared machine is the cores this process may run on
(``os.sched_getaffinity``), and the threads the BLAS/OpenMP pools start: a threaded BLAS call on
busy cores waits for them (measured: a 512k-entry ``ddot`` 8 ms with two OpenBLAS threads against
0.3 ms with one, 2 cores shared by other jobs). The pools are read from :mod:`threadpoolctl` when it
is installed (not a dependency), else only the environment variables that set them are reported.
"""

from __future__ import annotations

import functools
import os

__all__ = ["THREAD_VARIABLES", "thread_info", "thread_summary"]

#: Environment variables that size the BLAS and OpenMP thread pools.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@functools.lru_cache(maxsize=1)
def thread_info() -> dict[str, object]:
    """Cores (machine and usable by this process), the thread variables set, and the pools found.

    Returns
    -------
    dict
        ``cores``, ``usable_cores``, ``variables`` (name -> value, only those set) and ``pools``
        (a list of ``{"library", "api", "threads"}``; empty without threadpoolctl).
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    variables = {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ}
    pools: list[dict[str, object]] = []
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        pools = [{"library": p.get("prefix", "?"), "api": p.get("internal_api", "?"), "threads": p.get("num_threads")} for p in threadpool_info()]
    return {"cores": os.cpu_count(), "usable_cores": usable, "variables": variables, "pools": pools}


def thread_summary() -> str:
    """One line such as ``2 cores (2 usable); OPENBLAS_NUM_THREADS=1; openblas: 1 thread``."""
    info = thread_info()
    parts = [f"{info['cores']} cores ({info['usable_cores']} usable)"]
    variables = info["variables"]
    assert isinstance(variables, dict)
    parts.append(", ".join(f"{k}={v}" for k, v in variables.items()) or "no thread variables set")
    pools = info["pools"]
    assert isinstance(pools, list)
    parts.append(", ".join(f"{p['api']}: {p['threads']} thread{'' if p['threads'] == 1 else 's'}" for p in pools) if pools else "thread pools unknown (threadpoolctl not installed)")
    return "; ".join(parts)
