"""Optuna: the search space and its sampler and pruner (:mod:`.search`), the regime
classifier (:mod:`.regime_model`) and the sampler for maps (:mod:`.boundary`), the storage
(:mod:`.storage`), workers sharing one study (:mod:`.lock`, :mod:`.recovery`,
:mod:`.worker`, :mod:`.pool`, :mod:`.spawned`), the objective (:mod:`.objective`) and the
parent run (:mod:`.parent`)."""
