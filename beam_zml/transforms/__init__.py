"""The Beam layer that pipelines/build_dataset.py composes: read the records, list each
repository's files, image the files, build the record rows. Each module wires plain logic from
`core/` and `sources/` into Beam and adds nothing else; counters live in `counters`.
"""

from beam_zml.transforms.build_records import BuildRecordRows
from beam_zml.transforms.duplicates import MarkCopies
from beam_zml.transforms.image_files import ImagifyFiles
from beam_zml.transforms.list_files import ListRepositoryFiles

__all__ = ["BuildRecordRows", "ImagifyFiles", "ListRepositoryFiles", "MarkCopies"]
