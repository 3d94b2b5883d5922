"""Data layer: loading and validation, id vocabularies, CSR matrices, splits and popularity buckets."""

from longtail.data.buckets import COLD, HEAD, TAIL, popularity_buckets
from longtail.data.dataset import Dataset, load_dataset
from longtail.data.history import HistoryBatch, first_events
from longtail.data.interactions import Interactions
from longtail.data.io import RawData, read_raw
from longtail.data.registry import dataset_dirs, resolve_dataset
from longtail.data.vocab import IdVocab

__all__ = [
    "COLD",
    "HEAD",
    "TAIL",
    "Dataset",
    "HistoryBatch",
    "IdVocab",
    "Interactions",
    "RawData",
    "dataset_dirs",
    "first_events",
    "load_dataset",
    "popularity_buckets",
    "read_raw",
    "resolve_dataset",
]
