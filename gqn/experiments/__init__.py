"""The seeds' experiments, one ``gqn experiment NAME`` each (JSON + Markdown + figures).

:data:`EXPERIMENTS` maps each name to the module that implements it. Such a module exposes
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``, and writes its outputs
with :func:`gqn.experiments.report.write_report`; its training runs go through
:func:`gqn.experiments.runs.train_in_chunks`, so an interrupted experiment resumes.
"""

EXPERIMENTS: dict[str, str] = {
    "narratives-min-mse": "gqn.experiments.narratives_min_mse",
    "narratives-samples": "gqn.experiments.narratives_samples",
    "narratives-consistency": "gqn.experiments.narratives_consistency",
    "multiscale-compare": "gqn.experiments.multiscale_compare",
    "dice-elbo": "gqn.experiments.dice_elbo",
    "dice-kl-consistency": "gqn.experiments.dice_kl",
    "dice-samples": "gqn.experiments.dice_samples",
}
