"""Experiments driven by yaml specs in ``properties/experiments/``; every run goes through ``objective()``.

- :mod:`.spec`: locate and load spec files; errors name file, line and field.
- :mod:`.probe`: build a run's Config in the driver (validation, dataset preparation, config hash).
- :mod:`.bench`: grid of models x strategies x backbones x seeds, one subprocess per run (:mod:`.cell`),
  CSV + mean ± std table + figures (:mod:`.report`), resumable.
- :mod:`.tune`: Ray Tune sweep with per-epoch validation reports and ASHA; test only for the best trial,
  through :func:`.evaluate.evaluate_run`.
"""
