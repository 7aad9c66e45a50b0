"""MLflow: the one module that talks to it (:mod:`.store`), and a training recorded as
one run (:mod:`.recorder`)."""
