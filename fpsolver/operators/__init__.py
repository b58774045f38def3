"""Assembly of sparse Fokker–Planck generators in conservative flux form.

Importing this package registers every built-in model kind's generator in
:data:`~fpsolver.operators.registry.GENERATORS`.
"""

from .overdamped import overdamped_generator
from .registry import GENERATORS, assemble_generator, register_generator

__all__ = ["overdamped_generator", "assemble_generator", "register_generator", "GENERATORS"]
