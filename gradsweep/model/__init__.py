"""The network: its layers and optimizer (:mod:`.network`), the gradient statistics it
computes in its train step (:mod:`.gradstats`), and what mean-field theory predicts for it
(:mod:`.theory`)."""
