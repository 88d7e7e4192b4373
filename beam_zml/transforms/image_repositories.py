"""ImageRepositories: records in; their files/ rows, outcomes, errors and the images and files/ shards written.

The graph, and what each shuffle carries (never a file's bytes nor an image):

    records -SpreadRecords-> list (fetch, list; image a record here if it is one item or not
    readable elsewhere) -SpreadItems-> image the work items (read, image, write both shards)

SpreadRecords carries RecordSources and SpreadItems work items (names and sizes); the outputs are
rows and shard paths.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from beam_zml.sources.zenodo import ZenodoSettings
from beam_zml.transforms.image_files import ERRORS, ROWS, ImageWorkItems, ItemImager
from beam_zml.transforms.list_files import (
    ITEM_BYTES,
    OUTCOMES,
    SHARDS,
    ListRepositoryFiles,
)


@dataclasses.dataclass
class ImageRepositories(beam.PTransform):
    """RecordSource -> {"rows": (record_id, files/ row), "shards": shard paths, "outcomes": (record_id, (source,
    status, error)), "errors": error rows}."""

    imager: ItemImager
    zenodo: ZenodoSettings | None = None
    exclude_pattern: str | None = None
    item_bytes: int = ITEM_BYTES

    def expand(self, sources):
        listed = sources | "ListRepositoryFiles" >> ListRepositoryFiles(
            self.imager, self.zenodo, self.exclude_pattern, self.item_bytes
        )
        imaged = listed["items"] | "ImageWorkItems" >> ImageWorkItems(self.imager)
        return {
            ROWS: (listed[ROWS], imaged[ROWS]) | "AllRows" >> beam.Flatten(),
            SHARDS: (listed[SHARDS], imaged["shards"]) | "AllItemShards" >> beam.Flatten(),
            OUTCOMES: listed[OUTCOMES],
            ERRORS: (listed[ERRORS], imaged[ERRORS]) | "AllItemErrors" >> beam.Flatten(),
        }
