"""Data loading: map-style and iterable datasets, a resumable multi-worker `DataLoader`, collation to
numpy then MLX."""

from audiotrain.data.collate import default_collate, default_convert, to_mlx
from audiotrain.data.combined import CombinedLoader
from audiotrain.data.dataset import Dataset, IterableDataset, Subset
from audiotrain.data.loader import DataLoader
from audiotrain.data.workers import DataLoaderError, WorkerInfo, batch_rng, get_worker_info

__all__ = [
    "CombinedLoader",
    "DataLoader",
    "DataLoaderError",
    "Dataset",
    "IterableDataset",
    "Subset",
    "WorkerInfo",
    "batch_rng",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "to_mlx",
]
