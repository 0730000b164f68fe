from .core import area as surface

__all__ = ["surface"]
