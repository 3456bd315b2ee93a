"""Data loading: map-style datasets, a resumable multi-worker `DataLoader`, collation to numpy then MLX."""

from audiotrain.data.collate import default_collate, to_mlx
from audiotrain.data.dataset import Dataset, Subset
from audiotrain.data.loader import DataLoader
from audiotrain.data.workers import DataLoaderError, batch_rng

__all__ = ["DataLoader", "DataLoaderError", "Dataset", "Subset", "batch_rng", "default_collate", "to_mlx"]
