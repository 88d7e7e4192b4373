"""beam_zml: a dataset of Zenodo software as images, trees and metadata, built with Apache Beam."""

__version__ = "0.1.0"
FORMAT_VERSION = 1
