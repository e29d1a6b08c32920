"""Runs of methods whose stages differ from search → retrain → evaluate (see `pipeline.METHOD_RUNNERS`)."""
