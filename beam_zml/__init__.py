"""beam_zml: a dataset of Zenodo software as images, trees and metadata, built with Apache Beam.

The package, in the order the data flows: `sources/` (where code comes from), `core/` (what a file
and a record become, no Beam), `transforms/` (the Beam layer), `sinks/` (how the dataset is written),
`consume/` (reading it back). `storage` is the one door to Beam's FileSystems, `runners/` runs the
pipeline on clusters, and `testing/` holds the loopback servers and helpers of the tests. The
runnable entry points are in the top-level `pipelines/` package.
"""

import os

# TensorFlow's C++ log (oneDNN and CPU-feature notices at import, "NodeDef mentions attribute ..." and
# "Local rendezvous is aborting ..." while reading tf.data) is no user's business: every failure that
# matters reaches Python as an exception. It must be set before TensorFlow is first imported; the
# pipelines/ package imports beam_zml first for that. TF_CPP_MIN_LOG_LEVEL=0 in the environment brings it back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
FORMAT_VERSION = 1  # of OUT's layout as a whole; each Avro schema has its own version too
MANIFEST = "dataset.json"  # the commit record: a dataset is finished when OUT holds it
SINK_DIRS = ("images", "records", "files", "errors")  # OUT's folders, one per sink
