"""Entry points only: the `zml` command (`cli`), its flags and Beam's (`options`), and the runnable
modules it wraps, each with a `run(argv)` in the style of Beam's own examples: `build_dataset`
(the Beam pipeline), `harvest_records` (a Zenodo search to JSON lines) and `train_classifier`.
"""

import beam_zml  # noqa: E402,F401  before any entry point imports TensorFlow: it quiets TensorFlow's C++ log
