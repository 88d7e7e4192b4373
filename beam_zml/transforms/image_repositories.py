"""ImageRepositories: records in; notes out (beam_zml.core.notes): outcomes, files/ rows, errors, shard paths.

The graph, one line, and what each shuffle carries (never a file's bytes nor an image):

    records -SpreadRecords-> list (fetch, list; image a record here if it is one item or not
    readable elsewhere) -SpreadItems-> image the work items (read, image, write both shards)

SpreadRecords carries RecordSources; SpreadItems work items (names and sizes) and the notes of
the records imaged by their lister.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from beam_zml.transforms.image_files import ImageWorkItems, ItemImager
from beam_zml.transforms.list_files import ITEM_BYTES, ListRepositoryFiles
from beam_zml.transforms.zenodo_clients import ZenodoClients


@dataclasses.dataclass
class ImageRepositories(beam.PTransform):
    """RecordSource -> (record_id, (kind, value)) notes, with the images/ shards written."""

    imager: ItemImager
    zenodo: ZenodoClients | None = None
    exclude_pattern: str | None = None
    item_bytes: int = ITEM_BYTES

    def expand(self, sources):
        return (
            sources
            | "ListRepositoryFiles" >> ListRepositoryFiles(self.imager, self.zenodo, self.exclude_pattern, self.item_bytes)
            | "ImageWorkItems" >> ImageWorkItems(self.imager)
        )
