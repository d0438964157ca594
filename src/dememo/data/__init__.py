"""Datasets, the decoded cache and device-resident batches."""

from dememo.data.imageset import Dataset, ImageSet
from dememo.data.sources import DATASETS, load_dataset

__all__ = ["DATASETS", "Dataset", "ImageSet", "load_dataset"]
