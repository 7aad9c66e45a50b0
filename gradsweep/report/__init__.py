"""The sweep report: the regime surfaces and strips (:mod:`.surface`), the trials table and
pair maps (:mod:`.regime_map`) and the HTML page (:mod:`.page`)."""
