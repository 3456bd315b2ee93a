"""Compatibility path for code written against ``mlx_audio.data.data.dataset`` (seed tutorials)."""
