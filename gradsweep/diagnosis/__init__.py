"""Reading what a trial measured: the regime verdict (:mod:`.regime`) and the
gradient-flow figure (:mod:`.flow_figure`)."""
