"""Models: the chord recognition network and its loss, a CTC loss; CLAP lives in `audiotrain.models.clap`."""

from audiotrain.models.chord_loss import ChordRecognitionLoss
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
from audiotrain.models.ctc import ctc_loss

__all__ = ["ChordModelConfig", "ChordRecognitionLoss", "ChordRecognitionModel", "ctc_loss"]
