"""Training: typed run configs, the trainer loop, checkpoints, distributed set-up, health checks.

Public entry points: :class:`gqn.run_config.RunConfig`, :func:`gqn.models.loading.load_model`
(for eval/sample), :func:`gqn.train.trainer.train`.
"""
