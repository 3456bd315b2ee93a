"""A CLAP model with its front end and tokenizer (a `Bundle`): loaded from a checkpoint, built for the offline
demo, rebuilt from a run folder, and exported as a Hugging Face folder (``transformers.ClapModel`` loads it).

Both the training run (`audiotrain.recipes.clap.train`) and ``python -m audiotrain.recipes.clap export`` use
this module; it imports neither of them.

`export_checkpoint` is ``python -m audiotrain.recipes.clap export`` (see `audiotrain.recipes.clap.cli`):
the architecture, tokenizer and front end come from the model folder the run started from (recorded in
``RUN/config.json``, or for a checkpoint alone in its own ``trainer_state.json``), the weights from the
checkpoint.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiotrain._files import STORAGE_ERRNOS, OutputWriteError, check_regular_file, read_json_file
from audiotrain.models.clap.training_outputs import (
    cache_repository_note,
    chord_recipe_output,
    holds_chord_state,
)
from audiotrain.recipes._run import check_can_write, is_inside, shell_command
from audiotrain.recipes.clap.config import DEFAULT_MAX_TOKENS, ClapRecipeConfig
from audiotrain.recipes.clap.task import CLAPTrainModule, check_freezing_fits
from audiotrain.recipes.config_cli import check_fits_memory
from audiotrain.train import checkpoint as ckpt

__all__ = [
    "Bundle",
    "build_demo",
    "bundle_of_run",
    "demo_model_config",
    "export_bundle",
    "export_checkpoint",
    "load_checkpoint",
]


@dataclass
class Bundle:
    """What a run trains: the model, its config, front end, tokenizer and the folder they came from."""

    model: Any
    config: Any
    extractor: Any
    tokenizer: Any
    source: Path
    demo: bool


def replay_model_note(record_file: str | Path, pretrained: str, bundle: Bundle) -> str | None:
    """A ``note:`` line where a repeat of the run recorded in `record_file` (``--config RUN/config.json``)
    loads another model folder than that run started from (its ``model_source``): a hub id is recorded as
    typed, and the cache's snapshot of it moves with its main branch. None where they are the same, or the
    record names none."""
    try:
        recorded = read_json_file(Path(record_file), ValueError).get("model_source")
    except (OSError, ValueError, AttributeError):
        return None  # (the settings reader said what is wrong with it)
    now = Path(bundle.source).resolve()
    if not isinstance(recorded, str) or _same_model_folder(Path(recorded), now):
        return None
    return (
        f"note: --pretrained {pretrained} now loads {now}; the run of {record_file} started from {recorded}, "
        f"so this is another run (--pretrained {recorded} repeats it)"
    )


def _same_model_folder(recorded: Path, now: Path) -> bool:
    """Whether `now` is the model folder `recorded`: the same folder, or the same commit of the same
    repository in another Hugging Face cache (``models--owner--name/snapshots/<commit>/``: a reader's own,
    another machine's), where a path alone called a repeat of the same model another run."""

    def snapshot(path: Path) -> tuple[str, str] | None:
        repo = path.parent.parent
        return (
            (repo.name, path.name)
            if path.parent.name == "snapshots" and repo.name.startswith("models--")
            else None
        )

    return recorded == now or (snapshot(now) is not None and snapshot(recorded) == snapshot(now))


def load_checkpoint(path_or_hub_id: str, max_tokens: int | None) -> Bundle:
    """The checkpoint's model, front end and tokenizer, checked against one another. Captions get `max_tokens`
    tokens, or when None `DEFAULT_MAX_TOKENS` lowered to the most the text tower takes; a `max_tokens` beyond
    that is capped here too, and refused by `check_settings_fit`."""
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import ClapTokenizer, load_pretrained

    model, config = load_pretrained(path_or_hub_id)
    source = Path(config.source)
    extractor = ClapFeatureExtractor.from_pretrained(source)
    tokenizer = ClapTokenizer.from_pretrained(source, max_length=max_tokens or DEFAULT_MAX_TOKENS)
    check_tokenizer_fits(tokenizer, config, source)
    check_front_end_fits(extractor, config, source)
    return Bundle(model, config, extractor, tokenizer, source, demo=False)


def caption_length_line(tokenizer, max_tokens: int | None) -> str:
    """What the run tokenizes captions to (`max_tokens`: --dataset.max_tokens, None when not given): the
    default lowered to the text tower's limit, and why not to a smaller model_max_length of the folder."""
    source = "--dataset.max_tokens"
    if max_tokens is None and tokenizer.max_length < DEFAULT_MAX_TOKENS:
        source += (
            f" unset: the default {DEFAULT_MAX_TOKENS}, lowered to the most the checkpoint's text tower takes"
        )
    line = (
        f"captions: {tokenizer.max_length} tokens each, <s> and </s> included ({source}); longer ones are cut"
    )
    limit = tokenizer.model_max_length
    if limit is not None and limit < tokenizer.max_length:
        line += (
            f"; tokenizer_config.json's model_max_length {limit} does not lower it (transformers too applies "
            "it only when no max_length is given)"
        )
    return line


def check_tokenizer_fits(tokenizer, config, source: Path) -> None:
    """Refuse a tokenizer whose ids (added tokens included) reach past the text model's embedding table:
    MLX does not check gather indices, so such an id gives NaN embeddings or a crash instead of an error."""
    vocab_size = config.text_config.vocab_size
    if tokenizer.vocab_size > vocab_size:
        raise ValueError(
            f"{source}: the tokenizer has {tokenizer.vocab_size} tokens (added tokens included) but the text "
            f"model's text_config.vocab_size is {vocab_size}; ids from {vocab_size} on have no embedding. Use "
            "the tokenizer the checkpoint was trained with (or resize the text embeddings before saving it)"
        )


def check_front_end_fits(extractor, config, source: Path) -> None:
    """Refuse a front end whose log-mels the audio model cannot take (more frames than it folds, other mel
    bands, 4 fusion views for an unfused model), naming the settings of both files, before any data is read
    rather than at the first forward pass: every such problem of the front end in one message."""
    audio = config.audio_config
    pre, cfg, field = extractor.settings_file or source, source / "config.json", extractor.field_name
    # Every problem in one message: a folder refused for one field, then after its fix for the next, cost the
    # user a run for each.
    problems, used = [], []  # (used: the settings the problems name)
    if extractor.n_frames > audio.spec_width:
        used += ["max_length_s", "sampling_rate", "hop_length"]
        longest_s = (audio.spec_width - 1) * extractor.hop_length / extractor.sampling_rate
        # Whole seconds where a second fits: the extractor warns at every later command that transformers
        # cannot read a model with a fraction (2.55 s, this limit for the tiny test model), so advice of the
        # exact limit cost the user a second fix.
        advised_s = float(int(longest_s)) if longest_s >= 1 else longest_s
        whole = f" (whole seconds, which transformers reads; at most {longest_s:g})" if advised_s >= 1 else ""
        # (the samples of the rounded seconds the message gives, as the extractor computes them from it)
        samples = int(float(f"{advised_s:g}") * extractor.sampling_rate)
        problems.append(
            f"{field('max_length_s')} {extractor.max_length_s:g} at sampling_rate "
            f"{extractor.sampling_rate} and hop_length {extractor.hop_length} makes {extractor.n_frames} "
            f"frames, but the audio model of {cfg} takes at most {audio.spec_width} (audio_config.spec_size "
            f"{audio.spec_size} x spec_size / num_mel_bins {audio.num_mel_bins}); use "
            f"{field('max_length_s')} {advised_s:g} or less{whole} (and {field('nb_max_samples')}, where the "
            f"file holds it, max_length_s x sampling_rate: {samples} for "
            f"{advised_s:g}), or the front end the checkpoint was trained with"
        )
    if extractor.feature_size != audio.num_mel_bins:
        used.append("feature_size")
        problems.append(
            f"{field('feature_size')} {extractor.feature_size} mel bands, but the audio model of "
            f"{cfg} expects audio_config.num_mel_bins {audio.num_mel_bins}"
        )
    # transformers' ClapFeatureExtractor() defaults to "fusion", so a processor built without setting it
    # gets this; an unfused model refuses the 4 views at its first forward pass, naming neither file.
    if extractor.truncation == "fusion" and not audio.enable_fusion:
        used.append("truncation")
        problems.append(
            f"{field('truncation')} 'fusion' makes 4 views of each clip (the whole clip and 3 crops), "
            f"but the audio model of {cfg} takes 1 (audio_config.enable_fusion is false); use 'rand_trunc', "
            "the front end of unfused checkpoints"
        )
    if problems:
        note = extractor.defaults_note(used)  # (a default the file leaves out may be the one to set)
        raise ValueError(f"{pre}: " + "; and ".join(problems) + (f"; {note}" if note else ""))


def check_settings_fit(cfg: ClapRecipeConfig, config) -> None:
    """Settings the model's config bounds, named by their flags, before any data is read."""
    text, audio = config.text_config, config.audio_config
    longest = text.max_position_embeddings - text.pad_token_id - 1
    # (Unset, it is lowered to `longest` instead: `load_checkpoint`.)
    if cfg.dataset.max_tokens is not None and cfg.dataset.max_tokens > longest:
        raise ValueError(
            f"--dataset.max_tokens {cfg.dataset.max_tokens}: the text tower accepts at most {longest} tokens "
            f"(max_position_embeddings {text.max_position_embeddings}); pass --dataset.max_tokens {longest} or less"
        )
    check_freezing_fits(cfg.task, text.num_hidden_layers, len(audio.depths))


def model_config_known_now(cfg: ClapRecipeConfig):
    """The model config of the run, where it is known without building the model, for `check_settings_fit`
    before any training process starts: the demo's (with a placeholder vocabulary), or a --pretrained
    Hugging Face folder's config.json; None for a hub id, or a folder the load (or `check_pretrained_folder`)
    reports."""
    from audiotrain.models.clap import ClapConfig
    from audiotrain.models.clap.config import ClapConfigError

    if cfg.pretrained is None:
        return demo_model_config(1, cfg.dataset.max_tokens or DEFAULT_MAX_TOKENS, cfg.demo.width)
    folder = Path(cfg.pretrained).expanduser()
    if not folder.is_dir() or not has_model_files(folder):
        return None
    try:
        return ClapConfig.from_json(folder / "config.json")
    except ClapConfigError:  # (said by the load, with the checks that go with it)
        return None


#: The longest captions the offline demo's text tower takes, <s> and </s> included: a RoBERTa text tower's 512
#: (LAION-CLAP trains on 77). The demo sizes its position table from --dataset.max_tokens, so nothing else
#: bounds it, and 20000 ended the process with a segfault in the text tower's attention.
DEMO_MAX_TOKENS = 512


def check_demo_settings(cfg: ClapRecipeConfig):
    """The offline demo's model size, named by its flags, before any data is generated or read; returns the
    demo model's config (with a placeholder vocabulary) for `check_settings_fit`."""
    from audiotrain.models.clap import ClapModel

    max_tokens = cfg.dataset.max_tokens or DEFAULT_MAX_TOKENS
    if max_tokens > DEMO_MAX_TOKENS:
        raise ValueError(
            f"--dataset.max_tokens {max_tokens}: the offline demo's text tower takes at most "
            f"{DEMO_MAX_TOKENS} tokens (a RoBERTa text tower's length; LAION-CLAP uses 77); pass "
            f"--dataset.max_tokens {DEMO_MAX_TOKENS} or less"
        )
    # Without the token embeddings: the tokenizer trained on the captions may have far fewer than vocab_size.
    config = demo_model_config(1, max_tokens, cfg.demo.width)
    check_fits_memory(ClapModel(config), f"--demo.width {cfg.demo.width}")
    return config


def demo_extractor_settings() -> dict:
    """The demo's front end: 16 kHz, 2 s windows, 16 mel bands (201 frames), rand_trunc + repeatpad."""
    return {
        "feature_size": 16,
        "sampling_rate": 16000,
        "hop_length": 160,
        "max_length_s": 2,
        "fft_window_size": 512,
        "frequency_min": 50.0,
        "frequency_max": 8000.0,
        "truncation": "rand_trunc",
        "padding": "repeatpad",
    }


def demo_model_config(vocab_size: int, max_tokens: int, width: int = 64):
    """A ~0.4 M-parameter CLAP with the real architecture: 2 Swin stages on a 64x64 image, 2 text layers."""
    from audiotrain.models.clap import ClapAudioConfig, ClapConfig, ClapTextConfig

    return ClapConfig(
        text_config=ClapTextConfig(
            vocab_size=vocab_size,
            hidden_size=width,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=2 * width,
            max_position_embeddings=max_tokens + 2,  # RoBERTa positions start after the padding index
        ),
        audio_config=ClapAudioConfig(
            spec_size=64,
            num_mel_bins=16,
            window_size=4,
            patch_embeds_hidden_size=32,
            depths=(1, 1),
            num_attention_heads=(2, 4),
            hidden_size=64,
        ),
        projection_dim=width,
    )


#: Where a demo run keeps the files its model was built from (`save_demo`): what `export` rebuilds it from.
DEMO_INIT = "demo_init"


def build_demo(captions: list[str], cfg: ClapRecipeConfig) -> Bundle:
    """Random tiny model + tokenizer trained on `captions`, in memory (nothing is written: a resume is checked
    against the model before the run folder is); `save_demo` writes its files into the run folder."""
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import ClapModel, ClapTokenizer

    import mlx.core as mx

    max_tokens = cfg.dataset.max_tokens or DEFAULT_MAX_TOKENS
    tokenizer = ClapTokenizer.train(captions, vocab_size=cfg.demo.vocab_size, max_length=max_tokens)
    extractor = ClapFeatureExtractor.from_dict(demo_extractor_settings(), source="demo front end")
    config = demo_model_config(tokenizer.vocab_size, max_tokens, cfg.demo.width)
    model = ClapModel(config)  # drawn from the generators `run` seeded
    mx.eval(model.parameters())
    return Bundle(model, config, extractor, tokenizer, Path(DEMO_INIT), demo=True)


def save_demo(bundle: Bundle, run_dir: Path) -> None:
    """The demo `bundle`'s front end, tokenizer and config, in ``run_dir/demo_init`` (its source from now
    on)."""
    source = run_dir / DEMO_INIT
    bundle.tokenizer.save_pretrained(source)
    bundle.extractor.save_pretrained(source)
    bundle.config.save(source / "config.json")  # what `export` rebuilds the model from
    bundle.source = source


def export_bundle(bundle: Bundle, out_dir: Path) -> Path:
    """`bundle`'s model, with its front end and tokenizer, as a Hugging Face folder (``transformers`` loads it)."""
    from audiotrain.models.clap import save_pretrained

    return save_pretrained(
        bundle.model, bundle.config, out_dir, extractor_dir=bundle.source, tokenizer=bundle.tokenizer
    )


def check_resume_matches(folder: Path, task: CLAPTrainModule) -> None:
    """Raise a short `CheckpointError` when the checkpoint's model arrays do not fit `task` (e.g. a checkpoint
    of another recipe or another CLAP size), before the evaluation and training start. The same check the
    Trainer makes when it loads, only earlier."""
    model_file = folder / ckpt.MODEL_FILE
    ckpt.check_matches(ckpt.read_header(model_file), ckpt.flat(task.parameters()), "CLAP model", model_file)


#: trainer_state.json key of what a run trains from (`model_record`).
MODEL_KEY = "model"


def model_record(bundle: Bundle) -> dict[str, Any]:
    """What a checkpoint stores about the model a run started from: the folder (None for the demo, whose
    folder is the run's own), a fingerprint of its config and tokenizer files, and the front end's settings.
    A resume compares the fingerprint, not the folder: the same model copied or moved elsewhere resumes."""
    return {
        "source": None if bundle.demo else str(Path(bundle.source).resolve()),
        "fingerprint": None if bundle.demo else _model_fingerprint(Path(bundle.source)),
        "front_end": bundle.extractor.to_dict(),
    }


def _model_fingerprint(source: Path) -> str:
    """SHA-256 over the files that make a model's text side and architecture besides its weights (whose
    names and shapes the checkpoint's arrays are checked against when they load)."""
    from audiotrain.models.clap.tokenizer import TOKENIZER_FILES

    digest = hashlib.sha256()
    for name in sorted({"config.json", *TOKENIZER_FILES}):
        file = source / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def check_resume_model(folder: Path, state: dict[str, Any], bundle: Bundle) -> None:
    """Refuse to resume checkpoint `folder` (its trainer state `state`) from another --pretrained model or
    front end than it trained from: the tokenizer, the log-mels and the export would then be another model's.
    Checkpoints from before the record pass."""
    differs = _model_differs(folder, state, bundle)
    if differs == "model":
        raise ValueError(
            f"cannot resume from {folder}: it was trained from --pretrained {state[MODEL_KEY].get('source')}, "
            f"this run loads {bundle_source(bundle)}, whose config.json or tokenizer files differ; resume with "
            "the --pretrained it trained from (a copy of it elsewhere will do), or start a new run (another "
            "--out, without --resume)"
        )
    if differs:
        raise ValueError(
            f"cannot resume from {folder}: the front end of {bundle_source(bundle)} has changed since it "
            f"trained ({differs}); restore it, or start a new run"
        )


def check_export_model(folder: Path, state: dict[str, Any], bundle: Bundle, run: Path) -> None:
    """Refuse to export checkpoint `folder` with the model files of run `run` (`bundle_of_run`) where they
    are not the ones it trained with: a checkpoint copied into another run's checkpoints/ would otherwise
    ship its weights with that run's tokenizer and front end. Checkpoints from before the record pass."""
    differs = _model_differs(folder, state, bundle)
    if not differs:
        return
    recorded = (state.get(MODEL_KEY) or {}).get("source")
    own_model = recorded == read_run_record(run)["model_source"]
    stand_in = Path(bundle.source).resolve() == (run / "hf_model").resolve()
    if differs == "model" and own_model and stand_in:
        # The run's own model, its folder since moved: the run's hf_model/ copy (written anew, so not
        # byte for byte) stands in for it, as bundle_of_run said. Only then: a folder still there but
        # edited since would ship the weights with files they were not trained with.
        return
    what = "its config.json or tokenizer files differ" if differs == "model" else f"its front end: {differs}"
    if own_model:
        raise ValueError(
            f"cannot export {folder}: {bundle_source(bundle)}, the model folder it was trained from (the run's "
            f"--pretrained), has changed since ({what}), and the export would ship its weights with the "
            "changed files; restore the files it trained with there"
        )
    raise ValueError(
        f"cannot export {folder}: it was trained from {state[MODEL_KEY].get('source') or 'the demo model'}, and "
        f"the run {run} (read for the model files) starts from {bundle_source(bundle)}, not the same model "
        f"({what}); pass --run with the run folder the checkpoint was trained in"
    )


def bundle_source(bundle: Bundle) -> str:
    return str(Path(bundle.source).resolve())


def checked_model_record(folder: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """The model record (`model_record`) of checkpoint `folder`'s state `state`, None in one from before it
    was kept; fields of the wrong type (edited by hand) are a CheckpointError naming the field, where they
    failed as a raw AttributeError or TypeError."""
    record = state.get(MODEL_KEY)
    if not isinstance(record, dict):
        return None
    where = f"{folder / ckpt.STATE_FILE}: {MODEL_KEY}"
    kinds = {"source": (str, type(None)), "fingerprint": (str, type(None)), "front_end": (dict, type(None))}
    for key, kind in kinds.items():
        if key in record and not isinstance(record[key], kind):
            what = "an object of front-end settings" if key == "front_end" else "a string or null"
            raise ckpt.CheckpointError(
                f"{where}.{key} is {record[key]!r}, not {what} (edited by hand?); restore the checkpoint's "
                "trainer_state.json"
            )
    if record.get("front_end"):
        _check_recorded_front_end(record["front_end"], f"{where}.front_end")
    return record


def _check_recorded_front_end(front_end: dict[str, Any], where: str) -> None:
    """Refuse a recorded front end that no front end makes (a padding of 1e308, a hop_length of inf): compared
    with the model folder's, it read as that folder's front end having changed since (and, in an export,
    suggested --run), while the damage is in the checkpoint's record, field `where`."""
    from audiotrain.features.clap import ClapFeatureExtractor

    try:
        ClapFeatureExtractor.from_dict(front_end, source=where)
    except (TypeError, ValueError) as error:
        raise ckpt.CheckpointError(
            f"{error} (edited by hand?); restore the checkpoint's trainer_state.json"
        ) from None


def _model_differs(folder: Path, state: dict[str, Any], bundle: Bundle) -> str | None:
    """None where `bundle` is the model checkpoint `folder`'s state `state` records it trained from (or it
    records none); "model" where its config or tokenizer files differ; else the front-end settings that
    differ. A record of the wrong shape (edited by hand) is a CheckpointError naming the field."""
    before, now = checked_model_record(folder, state), model_record(bundle)
    if before is None:
        return None
    same = (
        before["fingerprint"] == now["fingerprint"]
        if "fingerprint" in before
        else before.get("source") == now["source"]
    )
    if not same:
        return "model"
    old_front, extractor = before.get("front_end") or {}, bundle.extractor
    # A setting the record lacks was refused as the folder's changed from None (a deleted fft_window_size);
    # a record without front end at all is older than it and passes.
    lacking = [k for k, v in now["front_end"].items() if old_front and k not in old_front and v is not None]
    if lacking:
        raise ckpt.CheckpointError(
            f"{folder / ckpt.STATE_FILE}: {MODEL_KEY}.front_end lacks {', '.join(lacking)} "
            "(edited by hand?); restore the checkpoint's trainer_state.json"
        )
    changed = [
        f"{extractor.field_name(k)} {old_front.get(k)!r} → {v!r}"
        for k, v in now["front_end"].items()
        if old_front.get(k) != v
    ]
    if not changed:
        return None
    where = extractor.settings_file.name if extractor.settings_file else "the front end"
    return f"{where}: {', '.join(changed)}"


def load_task_weights(task: CLAPTrainModule, folder: Path) -> None:
    """Load the model arrays of trainer checkpoint `folder` into `task` (names and shapes checked)."""
    model_file = folder / ckpt.MODEL_FILE
    task.update(ckpt.read_tree(model_file, task.parameters(), "CLAP model"))


RUN_CONFIG = "config.json"


def read_run_record(run_dir: Path) -> dict:
    """``RUN/config.json`` as the recipe wrote it (checked for the fields the export reads)."""
    path = run_dir / RUN_CONFIG
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; the export reads the run's config.json (written by python -m "
            "audiotrain.recipes.clap). Pass --run RUN when the checkpoint is not in RUN/checkpoints/"
        )
    record = read_json_file(path, ValueError)
    fields = {"model_source": str, "demo": bool, "config": dict}
    for name, kind in fields.items():
        if not isinstance(record, dict) or not isinstance(record.get(name), kind):
            raise ValueError(
                f"{path}: field {name!r} missing or not a {kind.__name__}; expected the config.json of a CLAP "
                "recipe run"
            )
    return record


def has_model_files(folder: Path) -> bool:
    """Whether `folder` holds the architecture, tokenizer and front-end files (as the run's hf_model/ does)."""
    from audiotrain.features.clap import FRONT_END_FILES

    tokenizer = (folder / "tokenizer.json").is_file() or (
        (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    )
    front_end = any((folder / name).is_file() for name in FRONT_END_FILES)
    return tokenizer and front_end and (folder / "config.json").is_file()


def not_regular_model_files(folder: Path) -> list[str]:
    """What is wrong with each file of a CLAP folder (config, tokenizer, front end, weights) that is there but
    is no regular file (a FIFO, a folder, a device), as `check_regular_file` says it; none is opened."""
    from audiotrain.features.clap import FRONT_END_FILES
    from audiotrain.models.clap.loading import WEIGHT_FILES
    from audiotrain.models.clap.tokenizer import TOKENIZER_FILES

    found = []
    for name in ("config.json", *TOKENIZER_FILES, *FRONT_END_FILES, *WEIGHT_FILES):
        if os.path.lexists(folder / name) and not (folder / name).is_file():
            try:
                check_regular_file(folder / name, ValueError)
            except ValueError as error:
                found.append(str(error))
    return found


def _refuse_link_out_of(run_folder: Path, model: Path) -> None:
    """Refuse the run's `model` folder (hf_model/) when it is a link leading outside `run_folder`: given a run
    folder, the model scored must be that run's (as a chords run's checkpoints/best linked out is refused)."""
    target = model.resolve()
    if not target.is_relative_to(run_folder.resolve()):
        raise ValueError(
            f"{model} leads outside the run folder {run_folder} (a link to {target}); loading reads nothing "
            f"outside the folder it was given: name that folder itself (--model {target}), or copy it into "
            "the run folder (cp -rL) instead of linking it"
        )


def model_folder_to_score(given: str) -> tuple[str, str | None]:
    """(the model `load_checkpoint` is to load for ``evaluate --model given``, a note on stderr or None): a
    Hugging Face CLAP folder as it is (a pretrained checkpoint, an ``export``, a run's hf_model/), a run
    folder's hf_model/, or a hub id (a name of the form 'owner/name' that is no folder here). A trainer
    checkpoint, a run without hf_model/, a file or anything else is refused, naming `given` and what was
    expected (the load's own errors named neither the flag nor the export to run first)."""
    expected = (
        "expected a Hugging Face CLAP folder (config.json, model weights, the tokenizer and "
        "preprocessor_config.json: a pretrained checkpoint, an export's folder, a run's hf_model/), a run "
        "folder holding one, or a hub id"
    )
    path = Path(given).expanduser()
    export = "python -m audiotrain.recipes.clap export --checkpoint CHECKPOINT --out DIR"
    # A chord recipe's run or checkpoint was told to run the CLAP export, which fails on it.
    chords = f"--model {given}: a chord recipe {{}}, not a CLAP model; score it with python -m "
    chords += f"audiotrain.recipes.chords evaluate {shell_command('--checkpoint', given)} --data DIR"
    if path.is_dir():
        chord_output = chord_recipe_output(path)
        if chord_output:
            raise ValueError(chords.format(chord_output))
        if (path / ckpt.STATE_FILE).is_file():
            export = export.replace("CHECKPOINT", str(path))
            raise ValueError(
                f"--model {given}: a trainer checkpoint folder (it holds {ckpt.STATE_FILE}), not a Hugging Face "
                f"CLAP folder; a CLAP run's checkpoint is scored once exported: {export}, then --model DIR"
            )
        if has_model_files(path):
            return str(path), None
        own = path / "hf_model"
        if (path / RUN_CONFIG).is_file() and has_model_files(own):
            _refuse_link_out_of(path, own)
            return str(own), f"--model {given}: a run folder; scoring its {own}"
        if (path / RUN_CONFIG).is_file() and (path / "checkpoints").is_dir():
            raise ValueError(
                f"--model {given}: {_run_without_hf_model(path)} one of its "
                f"checkpoints first: {export.replace('CHECKPOINT', str(path / 'checkpoints' / 'last'))}, "
                "then --model DIR"
            )
        if repository := cache_repository_note(path):
            raise ValueError(f"--model {given}: {repository}")
        # (a FIFO config.json was "not a Hugging Face CLAP folder", naming no file)
        what = "; ".join(not_regular_model_files(path)) or "not a Hugging Face CLAP folder"
        raise ValueError(f"--model {given}: {what}; {expected}")
    refuse_a_file_of_a_model_folder("--model", given)
    if path.exists():
        raise ValueError(f"--model {given}: a file; {expected}")
    first = Path(given).parts[0] if Path(given).parts else ""
    if given.count("/") != 1 or given.startswith((".", "/", "~")) or Path(first).is_dir():
        bare = given.rstrip("/")  # (a hub page's address copied with its slash)
        hint = (
            f" (a hub id without the trailing slash: {bare})"
            if bare != given and bare.count("/") == 1
            else ""
        )
        raise FileNotFoundError(f"--model {given}: no such folder{hint}; {expected}")
    return given, None  # a hub id: `load_checkpoint` fetches it, or says why it cannot


def refuse_a_file_of_a_model_folder(flag: str, given: str) -> None:
    """Refuse a file of a Hugging Face CLAP folder (its model.safetensors or config.json, given where the
    folder was meant), naming the folder to pass: the load said only "expected a checkpoint folder", with
    no flag, and `evaluate` listed what a folder holds but not which."""
    from audiotrain.models.clap.loading import holds_weights

    path = Path(given).expanduser()
    if path.is_dir() or not path.exists():
        return
    # (a folder whose tokenizer is missing counts too: its load then names what it lacks)
    if not (has_model_files(path.parent) or holds_weights(path.parent)):
        return
    folder = Path(given).parent
    raise ValueError(
        f"{flag} {given}: a file of the Hugging Face CLAP folder {folder}, which {flag} takes whole (its "
        f"config, weights, tokenizer and front end); pass the folder: {flag} {folder}"
    )


def check_pretrained_folder(given: str) -> None:
    """Refuse a --pretrained that is a run folder or a trainer checkpoint, naming what to pass instead: the
    load named neither (a run folder was "no weights file", a checkpoint "config.json: no such file"). A
    Hugging Face CLAP folder, a hub id or a missing path is left to the load."""
    refuse_a_file_of_a_model_folder("--pretrained", given)
    path = Path(given).expanduser()
    if not path.is_dir() or has_model_files(path):
        return
    what = "not a Hugging Face CLAP folder"
    chord_output = chord_recipe_output(path)
    if chord_output:  # (its "did not finish" and CLAP export below failed on it)
        raise ValueError(
            f"--pretrained {given}: a chord recipe {chord_output}, not a CLAP model; the CLAP recipe "
            "fine-tunes a Hugging Face CLAP folder or hub id. To fine-tune the chord model on your songs: "
            f"python -m audiotrain.recipes.chords train --data DIR {shell_command('--init_from', given)}"
        )
    if (path / ckpt.STATE_FILE).is_file():
        raise ValueError(
            f"--pretrained {given}: a trainer checkpoint folder (it holds {ckpt.STATE_FILE}), {what}; export it "
            "first: python -m audiotrain.recipes.clap export "
            f"{shell_command('--checkpoint', given)} --out DIR, then --pretrained DIR"
        )
    if (path / RUN_CONFIG).is_file() and (path / "checkpoints").is_dir():
        own = path / "hf_model"
        if has_model_files(own):
            raise ValueError(
                f"--pretrained {given}: a run folder, {what}; to fine-tune its result pass --pretrained {own}"
            )
        raise ValueError(
            f"--pretrained {given}: {what}; {_run_without_hf_model(path)} "
            f"one of its checkpoints first: python -m audiotrain.recipes.clap export --checkpoint "
            f"{path / 'checkpoints' / 'last'} --out DIR, then --pretrained DIR"
        )


def _run_without_hf_model(run: Path) -> str:
    """What a run folder without ``hf_model/`` is, up to the advice to export one of its checkpoints: a run
    still going (another live process claims the folder) writes it as it ends; any other did not finish."""
    owner = ckpt.live_claim_owner(run)
    if owner is not None:
        return f"a run folder still going ({owner}): it writes hf_model/ as it ends: wait for it, or export"
    return "a run folder without hf_model/ (the run did not finish); export"


def bundle_of_run(run_dir: Path) -> Bundle:
    """The model (untrained weights), config, front end and tokenizer a run of the recipe started from."""
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import ClapConfig, ClapModel, ClapTokenizer

    record = read_run_record(run_dir)
    source = Path(record["model_source"])
    dataset = record["config"].get("dataset") or {}
    max_tokens = int(dataset.get("max_tokens") or DEFAULT_MAX_TOKENS)
    if not source.is_dir():
        own = run_dir / "hf_model"
        if not has_model_files(own):
            raise FileNotFoundError(
                f"{source}: the model folder the run started from (model_source in {run_dir / RUN_CONFIG}) is "
                "missing, and the run's hf_model/ does not hold config.json, the tokenizer and "
                "processor_config.json or preprocessor_config.json instead; they are the architecture, "
                "tokenizer and front-end files the export needs"
            )
        print(
            f"note: {source} (the model folder the run started from) is missing; using the architecture, "
            f"tokenizer and front-end files of the run's own {own}"
        )
        source = own
    if not record["demo"]:
        return load_checkpoint(str(source), max_tokens)
    tokenizer = ClapTokenizer.from_pretrained(source, max_length=max_tokens)
    extractor = ClapFeatureExtractor.from_pretrained(source)
    if (source / "config.json").is_file():
        config = ClapConfig.from_json(source / "config.json")
    else:  # a demo run written before demo_init held its config.json
        width = int((record["config"].get("demo") or {}).get("width", 64))
        config = demo_model_config(tokenizer.vocab_size, max_tokens, width)
    return Bundle(ClapModel(config), config, extractor, tokenizer, source, demo=True)


def bundle_of_checkpoint(folder: Path, state: dict[str, Any]) -> Bundle:
    """The model a lone checkpoint `folder` (no run folder around it) trained from, read from its own record
    (`state`, its trainer_state.json): the model folder and front end under `MODEL_KEY`, the caption length
    in its run settings. A demo run's tokenizer and front end live only in its run folder (demo_init/), and
    a checkpoint without the record, or whose model folder is gone, names ``--run`` instead; one whose model
    folder has changed since is refused."""
    from audiotrain.recipes.config_cli import RUN_CONFIG_KEY

    where = f"{folder / ckpt.STATE_FILE}"
    run_it = "pass --run RUN, the run folder it was trained in (the one holding config.json)"
    record, settings = checked_model_record(folder, state), state.get(RUN_CONFIG_KEY)
    if holds_chord_state(state):
        raise ValueError(
            f"cannot export {folder}: it is a checkpoint (or export) of the chord recipe, not a CLAP model; "
            "export it with python -m audiotrain.recipes.chords export"
        )
    if not isinstance(record, dict) or not isinstance(settings, dict):
        raise FileNotFoundError(
            f"cannot export {folder} alone: {where} does not record the model it trained from (a checkpoint "
            f"written before it did); {run_it}"
        )
    if record.get("source") is None:
        raise FileNotFoundError(
            f"cannot export {folder} alone: it is a checkpoint of the offline demo, whose tokenizer and front "
            f"end are in its run folder's {DEMO_INIT}/, not in the checkpoint; {run_it}"
        )
    source = Path(record["source"])
    if not source.is_dir():
        raise FileNotFoundError(
            f"cannot export {folder} alone: {source}, the model folder it was trained from ({MODEL_KEY}.source "
            f"in {where}), is missing; {run_it} (its hf_model/ stands in), or restore {source}"
        )
    max_tokens = (settings.get("dataset") or {}).get("max_tokens")
    bundle = load_checkpoint(str(source), int(max_tokens) if isinstance(max_tokens, int) else None)
    differs = _model_differs(folder, state, bundle)
    if differs:
        what = (
            "its config.json or tokenizer files differ" if differs == "model" else f"its front end: {differs}"
        )
        raise ValueError(
            f"cannot export {folder} alone: {source}, the model folder it was trained from, has changed since "
            f"({what}), and the export would ship its weights with the changed files; restore the files it "
            "trained with there"
        )
    return bundle


def _run_around(folder: Path, run_dir: str | Path | None) -> Path | None:
    """The run folder whose model files the export of checkpoint `folder` reads: `run_dir` where given, else
    the run around it (``RUN/checkpoints/X``, its config.json there); None for a lone checkpoint."""
    if run_dir is not None:
        return Path(run_dir)
    around = folder.resolve().parent.parent
    return around if (around / RUN_CONFIG).is_file() else None


def export_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, run_dir: str | Path | None = None, overwrite: bool = False
) -> Path:
    """Write trainer checkpoint `checkpoint` of a CLAP run as a Hugging Face folder `out_dir`.

    Parameters
    ----------
    checkpoint : str or Path
        A checkpoint folder, e.g. ``RUN/checkpoints/last``.
    out_dir : str or Path
        The Hugging Face folder to write (created; must be new or empty unless `overwrite`).
    run_dir : str or Path, optional
        The run folder holding ``config.json``; default: the checkpoint's grandparent (``RUN``) where it holds
        one, else the checkpoint's own record (the model folder it trained from; not for the demo).
    overwrite : bool
        Allow writing into a folder that already holds files.

    Returns
    -------
    Path
        `out_dir`.
    """
    folder = ckpt.resolve_checkpoint(checkpoint)
    # A complete audiotrain checkpoint, before the model is loaded; of an older format too (its model and
    # module state are as today's: `read_model_state`), as the chord recipe exports one.
    state = ckpt.read_model_state(folder)
    run = _run_around(folder, run_dir)
    out = Path(out_dir)
    if out.is_file():
        raise FileExistsError(f"--out {out} is a file; expected a folder for the Hugging Face export")
    if out.resolve() in {folder.resolve(), *([run.resolve()] if run else [])}:
        raise ValueError(f"--out {out} is the checkpoint or the run folder; choose a separate folder")
    # Even with --overwrite: the export's model.safetensors would replace a checkpoint's weights with
    # differently named ones, and its files would sit among the run's checkpoints.
    resolved = out.resolve()
    checkpoint_at = next((p for p in (resolved, *resolved.parents) if (p / ckpt.STATE_FILE).is_file()), None)
    checkpoints = {folder.resolve().parent, *([run / "checkpoints"] if run else [])}
    if checkpoint_at is not None:
        damaged = f"{checkpoint_at} is a trainer checkpoint"
    elif any(c.name == "checkpoints" and is_inside(out, c) for c in checkpoints):
        damaged = "it is in the run's checkpoints folder"
    else:
        damaged = None
    if damaged:
        raise ValueError(
            f"--out {out}: {damaged}, which the export would damage (--overwrite does not lift this); "
            "choose a folder outside the checkpoints, such as RUN/hf_model or a new one"
        )
    trained_from = (checked_model_record(folder, state) or {}).get("source")
    if trained_from is not None and out.resolve() == Path(trained_from).resolve():
        # Even with --overwrite, and even where it is an earlier export: a run repeated from its config would
        # start from the fine-tuned weights, and the model the run trained from would be gone.
        raise ValueError(
            f"--out {out} is the model folder this run trained from (its --pretrained); --overwrite does not "
            "replace it. Choose a new folder"
        )
    if out.is_dir() and any(out.iterdir()):
        # Even with --overwrite: a run's folder (its config.json would become the model's), a data folder or
        # a model folder saved by another tool is the user's, and replacing it whole would delete it.
        foreign = _not_an_export(out)
        if foreign:
            raise FileExistsError(
                f"--out {out} is not an earlier export: it holds {foreign}; --overwrite replaces only a folder "
                "an export wrote. Choose a new folder"
            )
        if not overwrite:
            raise FileExistsError(
                f"--out {out} already holds files (an earlier export); choose a new folder, or pass --overwrite "
                "to replace it"
            )
    check_can_write(out, f"--out {out}")

    def load(folder: Path) -> Bundle:
        import mlx.core as mx

        state = ckpt.read_model_state(folder)
        if run is None or holds_chord_state(state):  # (a chord run holds no CLAP run record: named there)
            bundle = bundle_of_checkpoint(folder, state)
        else:
            bundle = bundle_of_run(run)
            check_export_model(folder, state, bundle, run)
        task = CLAPTrainModule(bundle.model)
        load_task_weights(task, folder)
        mx.eval(task.parameters())  # (MLX reads lazily: here, while the folder is the one of the state)
        return bundle

    # A save of a running fit that replaces the checkpoint between its state and its weights makes the read
    # again: the export's model and settings are of one save.
    bundle = ckpt.read_unreplaced(checkpoint, ckpt.resolve_checkpoint, load)
    return replace_export(bundle, out, replace=overwrite)


def _export_files() -> frozenset[str]:
    """The names an export writes: `export_bundle`'s (its front end and tokenizer files, when the source has
    them) and `EXPORT_MARKER`."""
    from audiotrain.features.clap import FRONT_END_FILES
    from audiotrain.models.clap.tokenizer import TOKENIZER_FILES

    return frozenset({"config.json", "model.safetensors", *FRONT_END_FILES, *TOKENIZER_FILES, EXPORT_MARKER})


#: The file an export writes beside the model's, so that `export --overwrite` replaces only a folder an
#: export wrote: a model folder saved by transformers holds the very same names. (transformers ignores it.)
EXPORT_MARKER = "audiotrain_export.json"


def _not_an_export(folder: Path) -> str:
    """What in `folder` an export does not write, in words ("checkpoints/, data_report.txt"), or "" when it
    is an earlier export: only export files, `EXPORT_MARKER` among them, and a config.json of a CLAP model."""
    from audiotrain._files import TMP_PREFIX, is_finder_metadata

    if folder.is_symlink():
        return f"a link to {os.readlink(folder)}"
    entries = list(folder.iterdir())
    # (not a killed export's leftover, nor what macOS wrote as the folder was opened in the Finder, .DS_Store,
    # unless that is all it holds)
    names = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in entries
        if p.name not in _export_files()
        and not p.name.startswith(TMP_PREFIX)
        and not is_finder_metadata(p.name)
    )
    if not names and not any(p.name in _export_files() for p in entries):
        names = sorted(p.name for p in entries)
    if names:
        return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no readable config.json" if (folder / "config.json").exists() else "no config.json"
    if not isinstance(config, dict) or config.get("model_type") != "clap":
        return "a config.json that is not a CLAP model's (no model_type 'clap')"
    if not (folder / EXPORT_MARKER).is_file():
        return (
            f"a model without {EXPORT_MARKER}, the file an export writes (a model folder saved by transformers or "
            "by an older audiotrain is not replaced: delete it yourself if it is no longer wanted)"
        )
    return ""


def replace_export(bundle: Bundle, out: Path, replace: bool = True) -> Path:
    """Write the export to a hidden sibling folder and swap it in at `out`, so an earlier export there is
    replaced whole (no file of it left beside the new ones: another model's vocab.json or
    preprocessor_config.json would be read by older transformers) and a failed or interrupted write leaves it
    as it was, never half-written. `export` and the run's own hf_model/ both write this way.

    Without `replace` (``export`` without ``--overwrite``), `out` is taken only where it is still missing or
    empty when the export is swapped in (one rename, which fails on a folder that holds files): one that
    another export wrote meanwhile is left as it is, and a `FileExistsError` says so."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(4)}"
    previous = None
    try:
        export_bundle(bundle, tmp)
        _write_export_marker(tmp)
        if not replace:
            _claim(tmp, out)
        else:
            if out.exists():
                previous = out.parent / f".{out.name}.prev-{secrets.token_hex(4)}"
                os.replace(out, previous)
            os.replace(tmp, out)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if previous is not None and not out.exists():
            os.replace(previous, out)  # the earlier export back where it was
        full = _storage_failure(error, out)
        if full is None:
            raise
        raise full from None
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    return out


def _claim(tmp: Path, out: Path) -> None:
    """Rename the finished export `tmp` to `out`, where nothing but an empty folder stands: the rename is
    the check (two exports into one new --out: the second finds the first's files and is refused)."""
    try:
        os.rename(tmp, out)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        raise FileExistsError(
            f"--out {out} was written by another export while this one ran (it held no files when this "
            "export started): it is left as it is, and this export is not written. Choose a new folder, or "
            "pass --overwrite to replace it"
        ) from None


def _write_export_marker(folder: Path) -> None:
    """Mark `folder` as an export (`EXPORT_MARKER`), which a later ``export --overwrite`` may replace."""
    from audiotrain import __version__

    record = {
        "written_by": f"audiotrain {__version__}",
        "note": "an export of an audiotrain CLAP run: `export --overwrite` may replace this folder whole",
    }
    (folder / EXPORT_MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _storage_failure(error: BaseException, out: Path) -> OutputWriteError | None:
    """`error`, raised while the export for `out` was written, as an `OutputWriteError` naming `out` (not the
    hidden folder it was written in, now gone) where the storage caused it: an OSError of `STORAGE_ERRNOS`, or
    safetensors' own error for one ("I/O error: No space left on device (os error 28)"), which is no
    OSError. None for any other error."""
    number = error.errno if isinstance(error, OSError) else None
    if number is None and type(error).__name__ == "SafetensorError":
        found = re.search(r"\(os error (\d+)\)", str(error))
        number = int(found.group(1)) if found else None
    if number not in STORAGE_ERRNOS:
        return None
    failure = OutputWriteError(number, os.strerror(number), str(out))
    failure.note = (
        f"nothing was written there ({'its earlier export is as it was' if out.exists() else 'no export'})"
    )
    return failure
