"""Assembly of sparse Fokker–Planck generators in conservative flux form."""

from .overdamped import overdamped_generator

__all__ = ["overdamped_generator"]
