"""The Beam layer: composite transforms that the pipelines in pipelines/ compose.

Logic lives in the plain modules of beam_zml; these modules only wire it into Beam.
"""

from beam_zml.transforms.build_records import BuildRecordRows
from beam_zml.transforms.image_files import ImagifyFiles
from beam_zml.transforms.list_files import ListRepositoryFiles
from beam_zml.transforms.manifest import WriteManifest
from beam_zml.transforms.write_shards import WriteErrors, WriteFiles, WriteImages, WriteRecords

__all__ = [
    "BuildRecordRows",
    "ImagifyFiles",
    "ListRepositoryFiles",
    "WriteErrors",
    "WriteFiles",
    "WriteImages",
    "WriteManifest",
    "WriteRecords",
]
