"""The Beam layer that pipelines/build_dataset.py composes: read the records, list each
repository and image its work items (writing the images/ shards where they are made),
build the record rows. Each module wires plain logic from `core/` and `sources/` into Beam and
adds nothing else; counters live in `counters`.
"""

from beam_zml.transforms.build_records import BuildRecordRows
from beam_zml.transforms.image_files import ImageWorkItems, ItemImager
from beam_zml.transforms.image_repositories import ImageRepositories
from beam_zml.transforms.list_files import ListRepositoryFiles

__all__ = ["BuildRecordRows", "ImageRepositories", "ImageWorkItems", "ItemImager", "ListRepositoryFiles"]
