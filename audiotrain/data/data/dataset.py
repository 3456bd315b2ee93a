"""Compatibility alias: ``from audiotrain.data.data.dataset import Dataset`` is `audiotrain.data.Dataset`."""

from audiotrain.data.dataset import Dataset

__all__ = ["Dataset"]
