r"""Scharfetter–Gummel (exponential-fitting) face fluxes.

For a 1-D flux :math:`J = -D\,(\partial_x P + \psi' P) = -D e^{-\psi}\partial_x(e^{\psi}P)`
with :math:`D` and :math:`\psi'` constant between two nodes a distance
:math:`d` apart, the exact flux of the two-point boundary-value problem is

.. math::

    J = \frac{D}{d}\left[B(\Delta\psi)\,P_- - B(-\Delta\psi)\,P_+\right],
    \qquad B(z) = \frac{z}{e^z - 1},

with :math:`\Delta\psi = \psi_+ - \psi_-`. Properties used throughout fpsolver:

* :math:`B > 0`, so both weights are positive (an M-matrix generator, positivity);
* :math:`B(z)/B(-z) = e^{-z}`, so :math:`P \propto e^{-\psi}` at the nodes gives
  :math:`J = 0` exactly (the discrete Boltzmann/Gibbs state);
* :math:`B(z) \to 1` as :math:`z \to 0` (central differences) and the flux
  becomes upwind for :math:`|z| \gg 1` (no oscillations at strong drift).
"""

from __future__ import annotations

import numpy as np

__all__ = ["bernoulli", "sg_weights"]


def bernoulli(z: np.ndarray) -> np.ndarray:
    r"""Bernoulli function :math:`B(z) = z/(e^z - 1)`, :math:`B(0) = 1`, without overflow."""
    z = np.asarray(z, dtype=float)
    out = np.ones_like(z)
    pos = z > 0
    neg = z < 0
    zp = z[pos]
    # For z > 0 write B(z) = z e^{-z} / (1 - e^{-z}): no overflow for large z.
    out[pos] = zp * np.exp(-zp) / -np.expm1(-zp)
    zn = z[neg]
    out[neg] = zn / np.expm1(zn)
    return out


def sg_weights(delta_psi: np.ndarray, conductance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Weights ``(w_minus, w_plus)`` with :math:`J = w_- P_- - w_+ P_+`.

    Parameters
    ----------
    delta_psi
        :math:`\Delta\psi = \psi_+ - \psi_-` across each face.
    conductance
        :math:`D/d` for each face.
    """
    return conductance * bernoulli(delta_psi), conductance * bernoulli(-delta_psi)
