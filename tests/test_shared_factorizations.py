"""Factorising each distinct system once in the rate layer (:func:`fpsolver.linalg.sharing_factorizations`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sps

from fpsolver import linalg

from .test_phase_rates import _wells


def _laplacian(n: int, shift: float = 0.0) -> sps.csc_matrix:
    return sps.csc_matrix(sps.diags([-np.ones(n - 1), (2.0 + shift) * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]))


def test_equal_matrices_share_one_factorisation_only_inside_the_block():
    a = _laplacian(50)
    assert linalg.factorize(a) is not linalg.factorize(a)  # outside: always fresh
    with linalg.sharing_factorizations():
        first = linalg.factorize(a)
        assert linalg.factorize(a.copy()) is first  # equal by content, not by identity
        with linalg.sharing_factorizations():  # nested blocks share the outer one's
            assert linalg.factorize(a) is first
        assert linalg.factorize(_laplacian(50, shift=1e-12)) is not first  # one entry differs
        assert linalg.factorize(a, permc_spec="COLAMD") is not first  # other options: another system
    with linalg.sharing_factorizations():
        assert linalg.factorize(a) is not first  # released with the block


def test_only_the_most_recent_factorisations_are_kept():
    matrices = [_laplacian(30, shift=k) for k in range(linalg.SHARED_LIMIT + 1)]
    with linalg.sharing_factorizations():
        kept = [linalg.factorize(m) for m in matrices]
        assert linalg.factorize(matrices[-1]) is kept[-1]
        assert linalg.factorize(matrices[0]) is not kept[0]  # evicted: memory stays bounded


def test_three_wells_factorise_two_systems_instead_of_seven(monkeypatch):
    # Phase space, three seeds outside the target: the Markov decomposition factorises the free
    # cells once, and each seed's potential-theory time solves the chain and its time reversal on
    # the same free cells (every other seed absorbing) -- 1 + 2 * 3 factorisations without sharing.
    problem = _wells(4.0)
    calls = []
    plain = linalg.SOLVERS["superlu"]

    def counting(matrix, **options):
        calls.append(matrix.shape)
        return plain(matrix, **options)

    monkeypatch.setitem(linalg.SOLVERS, "superlu", counting)
    shared = problem.mfpt([-1.0, 0.0], target="x >= 1.45")
    assert len(calls) == 2
    with monkeypatch.context() as patch:  # the same computation without sharing: the same number, bit for bit
        patch.setattr(linalg, "_SHARED", _NeverShared())
        calls.clear()
        assert problem.mfpt([-1.0, 0.0], target="x >= 1.45") == shared
        assert len(calls) == 7


class _NeverShared:
    """A stand-in for the context variable under which no block is ever open."""

    def get(self):
        return None

    def set(self, value):
        return None

    def reset(self, token):
        return None
