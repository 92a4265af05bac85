"""Shipped weights (``*.pt`` with ``.sha256`` sidecars), loaded by name through
:mod:`gqn.models.pretrained`; how each was made: docs/pretrained.md."""
