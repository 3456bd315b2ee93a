"""Export a checkpoint of a CLAP run as a Hugging Face folder: ``python -m audiotrain.recipes.clap export``.

::

    python -m audiotrain.recipes.clap export --checkpoint RUN/checkpoints/epoch=3-step=120 --out my_clap/

``RUN/checkpoints/X`` is any trainer checkpoint of a run of the recipe (``last``, ``interrupted``, a
best-by-metric one). The architecture, tokenizer and front end come from the checkpoint the run started from
(or, for the offline demo, from ``RUN/demo_init``), as recorded in ``RUN/config.json``; when that folder is
gone, from the run's own ``RUN/hf_model`` (with a note). The weights come from the checkpoint. The folder
loads with ``transformers.ClapModel.from_pretrained`` and `audiotrain.models.clap.load_pretrained`, like the
run's own ``hf_model/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audiotrain.recipes.clap import (
    Bundle,
    demo_model_config,
    export_bundle,
    load_checkpoint,
    load_task_weights,
)
from audiotrain.recipes.clap_task import CLAPTrainModule
from audiotrain.recipes.config_cli import USER_ERRORS
from audiotrain.train import checkpoint as ckpt

RUN_CONFIG = "config.json"


def read_run_record(run_dir: Path) -> dict:
    """``RUN/config.json`` as the recipe wrote it (checked for the fields the export reads)."""
    path = run_dir / RUN_CONFIG
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; the export reads the run's config.json (written by python -m "
            "audiotrain.recipes.clap). Pass --run RUN when the checkpoint is not in RUN/checkpoints/"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
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
    tokenizer = (folder / "tokenizer.json").is_file() or (
        (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    )
    return tokenizer and all((folder / n).is_file() for n in ("config.json", "preprocessor_config.json"))


def bundle_of_run(run_dir: Path) -> Bundle:
    """The model (untrained weights), config, front end and tokenizer a run of the recipe started from."""
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import ClapConfig, ClapModel, ClapTokenizer

    record = read_run_record(run_dir)
    source = Path(record["model_source"])
    dataset = record["config"].get("dataset") or {}
    max_tokens = int(dataset.get("max_tokens", 77))
    if not source.is_dir():
        own = run_dir / "hf_model"
        if not has_model_files(own):
            raise FileNotFoundError(
                f"{source}: the model folder the run started from (model_source in {run_dir / RUN_CONFIG}) is "
                "missing, and the run's hf_model/ does not hold config.json, the tokenizer and "
                "preprocessor_config.json instead; they are the architecture, tokenizer and front-end files the "
                "export needs"
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
        The run folder holding ``config.json``; default: the checkpoint's grandparent (``RUN``).
    overwrite : bool
        Allow writing into a folder that already holds files.

    Returns
    -------
    Path
        `out_dir`.
    """
    folder = ckpt.resolve_checkpoint(checkpoint)
    ckpt.read_state(folder)  # a complete audiotrain checkpoint, before the model is loaded
    run = Path(run_dir) if run_dir is not None else folder.resolve().parent.parent
    out = Path(out_dir)
    if out.is_file():
        raise FileExistsError(f"--out {out} is a file; expected a folder for the Hugging Face export")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"--out {out} already holds files; choose a new folder, or pass --overwrite to replace the export there"
        )
    if out.resolve() in (folder.resolve(), run.resolve()):
        raise ValueError(f"--out {out} is the checkpoint or the run folder; choose a separate folder")
    bundle = bundle_of_run(run)
    task = CLAPTrainModule(bundle.model)
    load_task_weights(task, folder)
    return export_bundle(bundle, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audiotrain.recipes.clap export",
        allow_abbrev=False,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="trainer checkpoint folder of a CLAP run, e.g. RUN/checkpoints/last",
    )
    parser.add_argument("--out", required=True, help="Hugging Face folder to write (new or empty)")
    parser.add_argument(
        "--run", default=None, help="the run folder holding config.json (default: the checkpoint's RUN)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a folder that already holds files"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        out = export_checkpoint(args.checkpoint, args.out, args.run, args.overwrite)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported {args.checkpoint} to {out} (loads with transformers.ClapModel.from_pretrained)")
    return 0


__all__ = ["bundle_of_run", "export_checkpoint", "main"]
