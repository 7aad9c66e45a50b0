"""Training one model: the device (:mod:`.device`), kept compiled models
(:mod:`.compiled`) and the training loop with its recorded statistics (:mod:`.loop`)."""
