"""Data: procedural renderer (:mod:`gqn.data.render`), scene families (:mod:`gqn.data.scenes`)."""
