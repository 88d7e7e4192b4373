"""Runnable Beam pipelines, each a module with a run(argv) entry point."""

import beam_zml  # noqa: E402,F401  before any entry point imports TensorFlow: it quiets TensorFlow's C++ log
