"""The sweep report: the regime map (:mod:`.regime_map`) and the HTML page (:mod:`.page`)."""
