"""Data sets: load, split, oversample, scale (:mod:`.datasets`)."""
