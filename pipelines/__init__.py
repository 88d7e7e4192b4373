"""Runnable Beam pipelines, each a module with a run(argv) entry point."""
