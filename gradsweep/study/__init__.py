"""Optuna: the search space and its sampler and pruner (:mod:`.search`), the storage
(:mod:`.storage`), workers sharing one study (:mod:`.lock`, :mod:`.recovery`,
:mod:`.worker`), the objective (:mod:`.objective`) and the parent run (:mod:`.parent`)."""
