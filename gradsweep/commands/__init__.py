"""What each subcommand does, over the library: run a sweep or a single run
(:mod:`.sweep`), rebuild or compare reports (:mod:`.report`), rerun a run (:mod:`.rerun`)."""
