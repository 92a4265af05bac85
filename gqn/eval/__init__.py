"""Evaluation: image metrics, baselines, the ``gqn eval`` protocol and ``gqn sample``."""
