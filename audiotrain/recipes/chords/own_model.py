"""A chord model of the user's own (a `ChordRecognitionModel` subclass): its heads checked before training or
transcribing, and its class recorded in the checkpoints the guide's `Trainer` writes.

Why a check at all: the loss cannot raise inside its compiled graph (a chord-type target past a head of 25
classes was read as class 24, and trained without a word), a missing head failed mid-fit as a bare
`KeyError`, and a head of the wrong width or frames failed in `ChordPredictor` as a numpy broadcast error.
One eager forward pass of a few frames says which head is wrong, its shape and the shape expected.

Why the class is recorded: the checkpoint holds weights and settings, never code (no pickle), so ``predict``
builds the recipe's `ChordRecognitionModel`; a checkpoint of another class is refused by name, with the
Python call that loads it into the user's own model (`ChordPredictor.from_checkpoint(path, model=...)`).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from audiotrain.chords.vocabulary import NUM_PITCH_CLASSES
from audiotrain.models.chord_model import ChordRecognitionModel, joint_chord_classes

import mlx.core as mx

#: The checkpoint entry (beside the features and vocabulary `predict` reads) naming a model of the user's own.
MODEL_CLASS_KEY = "model_class"
#: Frames of the check's forward pass: more than one, so that a head that drops or pools frames shows.
CHECK_FRAMES = 4


def model_class_name(model: ChordRecognitionModel) -> str | None:
    """``module.QualName`` of a model of the user's own; None for the recipe's `ChordRecognitionModel`."""
    cls = type(model)
    return None if cls is ChordRecognitionModel else f"{cls.__module__}.{cls.__qualname__}"


def check_model_heads(model: ChordRecognitionModel, input_bins: int, where: str) -> None:
    """Refuse a model of the user's own whose outputs are not the heads the recipe trains and decodes:
    a dict of ``chord_type`` [batch, frames, model.config.num_chord_types], ``root`` and ``bass``
    [batch, frames, 12], and ``chord`` [batch, frames, joint classes]. The recipe's own model
    is built to fit them and is not run. ``chord`` is required where ``model.config.chord_head`` is set
    (decoding reads it). `where` names the call (``Trainer(model=...)``)."""
    name = model_class_name(model)
    if name is None:
        return
    types = model.config.num_chord_types
    widths = {"chord_type": types, "root": NUM_PITCH_CLASSES, "bass": NUM_PITCH_CLASSES}
    optional = {"chord": joint_chord_classes(types)}
    if model.config.chord_head:  # (decoding reads it)
        widths, optional = {**widths, **optional}, {}
    expected = ", ".join(f"{k!r} [batch, frames, {w}]" for k, w in {**widths, **optional}.items())
    optional_note = " ('chord' optional: model.config.chord_head is False)" if optional else ""
    what = f"{where}: {name} must return a dict of frame logits {expected}{optional_note}"
    features, mask = mx.zeros((1, CHECK_FRAMES, input_bins)), mx.ones((1, CHECK_FRAMES))
    try:  # (its signature alone: an error of the user's own forward pass is left as it is)
        inspect.signature(model.__call__).bind(features, mask)
    except TypeError as err:
        raise TypeError(
            f"{where}: {name} is called as model(features [batch, frames, {input_bins}], "
            "mask [batch, frames]) (mask=None in training): give its __call__ a mask=None parameter "
            f"({err})"
        ) from None
    # In eval mode: the check draws no dropout mask, so a seeded run trains as it did without it. With a
    # mask, as `ChordPredictor` calls it (windows padded at a song's end); the Trainer passes none.
    training = model.training
    model.eval()
    try:
        outputs = model(features, mask)
    except ValueError as err:  # (MLX's shape errors name no call and no input: say what the model was given)
        cfg = model.config
        layout = (
            f"each frame is features.n_bins ({cfg.n_bins}) bins, then features.bass_view_bins "
            f"({cfg.bass_view_bins}) of the bass view (ChordRecognitionModel's input)"
            if cfg.n_bins + cfg.bass_view_bins == input_bins
            else f"{input_bins} values a frame"
        )
        # The advice only where MLX's shapes show the input itself refused: a layer further in that does
        # not fit the one before it (its own hidden widths) is no matter of the input's width.
        fits = f"; size its first layer for {input_bins}"
        if f"(1,{CHECK_FRAMES},{input_bins})" not in str(err).replace(" ", ""):
            fits = "; its first layer took them: a layer further in does not fit the one before it"
        raise ValueError(
            f"{where}: {name}(features, mask) failed on features [1, {CHECK_FRAMES}, {input_bins}]: "
            f"{layout}{fits} ({err})"
        ) from err
    finally:
        model.train(training)
    if not isinstance(outputs, dict):
        raise TypeError(f"{what}; it returned a {type(outputs).__name__}")
    missing = [k for k in widths if k not in outputs]
    if missing:
        without_chord = (
            " (a model without it: ChordModelConfig(chord_head=False))" if "chord" in missing else ""
        )
        raise ValueError(f"{what}; it lacks {missing} (has {sorted(outputs)}){without_chord}")
    for head, width in {**widths, **{k: w for k, w in optional.items() if k in outputs}}.items():
        shape = tuple(getattr(outputs[head], "shape", ()))
        if shape != (1, CHECK_FRAMES, width):
            raise ValueError(
                f"{what}; its {head!r} head gave shape {shape} for features "
                f"[1, {CHECK_FRAMES}, {input_bins}], expected (1, {CHECK_FRAMES}, {width})"
                + (" (model.config.num_chord_types)" if head in ("chord_type", "chord") else "")
            )


def refuse_own_model_checkpoint(folder: Path, stored: dict[str, Any]) -> None:
    """Refuse loading a checkpoint of a model of the user's own into the recipe's `ChordRecognitionModel`,
    naming its class and the call that loads it (its weights would not fit, named array by array)."""
    name = stored.get(MODEL_CLASS_KEY)
    if not isinstance(name, str):
        return
    from audiotrain.train import checkpoint as ckpt

    short = name.rsplit(".", 1)[-1]
    raise ckpt.CheckpointError(
        f"{folder}: its weights are of {name}, a model of your own, which the recipe's commands cannot "
        "build (a checkpoint holds no code); from Python, import it and load the checkpoint into it: "
        f"ChordPredictor.from_checkpoint({str(folder)!r}, model={short}(...)), the model built as it was "
        "trained; to score it beside another model, write its .lab files (audiotrain.chords.write_lab) and "
        "run `score PREDICTIONS --data DIR --against OTHER_PREDICTIONS`"
    )
