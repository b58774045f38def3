"""Assembly of sparse Fokker–Planck generators in conservative flux form.

Importing this package registers every built-in model kind's generator in
:data:`~fpsolver.operators.registry.GENERATORS`.
"""

from .klein_kramers import klein_kramers_generator
from .overdamped import overdamped_generator
from .registry import GENERATORS, assemble_generator, register_generator

__all__ = ["overdamped_generator", "klein_kramers_generator", "assemble_generator", "register_generator", "GENERATORS"]
