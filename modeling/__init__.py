"""RAHF (Rich Automatic Human Feedback) model library.

A plain Python package: no Django imports. Arrays, tensors and paths go in, dataclasses come
out, so the web app (and anyone else) can adapt its own rows to it.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
