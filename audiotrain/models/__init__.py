"""Models: the chord recognition network and its loss; CLAP lives in `audiotrain.models.clap`."""

from audiotrain.models.chord_loss import ChordRecognitionLoss
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel

__all__ = ["ChordModelConfig", "ChordRecognitionLoss", "ChordRecognitionModel"]
