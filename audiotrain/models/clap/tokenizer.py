"""CLAP's text tokenizer: RoBERTa byte-level BPE through the ``tokenizers`` library.

LAION-CLAP tokenizes every caption to exactly 77 tokens (``<s> ... </s>`` then ``<pad>``), which is the default
here; ``padding="longest"`` pads only to the longest caption of a call instead.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, overload

from audiotrain._files import check_regular_file, read_json_file, write_text_atomically
from audiotrain._lfs import file_pointer_text
from audiotrain._text import lone_surrogate
from audiotrain.features.clap import as_return_tensors
from audiotrain.models.clap.training_outputs import training_output_note

import mlx.core as mx  # (loaded already by audiotrain.features: named in annotations)
import numpy as np

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
#: Tokens per caption when no length is asked for: LAION-CLAP's 77.
DEFAULT_MAX_LENGTH = 77
#: Characters of a caption tokenized per token kept: the rest is cut before tokenizing, as it can never reach
#: the kept tokens (a byte-level BPE token is a few characters, RoBERTa's longest a few dozen), while
#: `tokenizers` encodes the whole text before it truncates (10 MB of caption took 30 s and 3 GB).
CAPTION_CHARS_PER_TOKEN = 1024
#: The parts of the `tokenizers` Python API used here: the library's submodules, then `Tokenizer`'s methods
#: and properties. tokenizers 1.0 (1.0.0rc3) reworked its bindings and has none of the submodules and few of
#: the methods, so pyproject.toml asks for tokenizers<1.
_TOKENIZERS_MODULES_USED = ("decoders", "models", "pre_tokenizers", "processors", "trainers")
_TOKENIZER_API_USED = (
    "from_str",
    "to_str",
    "token_to_id",
    "no_padding",
    "enable_truncation",
    "get_vocab_size",
    "encode",
    "encode_batch",
    "decode",
    "train_from_iterator",
    "add_special_tokens",
    "pre_tokenizer",
    "decoder",
    "post_processor",
)


class TokenizerError(ValueError):
    """A tokenizer folder or input this tokenizer cannot use, or an installed `tokenizers` without the API
    it uses."""


def _check_tokenizers_api() -> None:
    """Raise `TokenizerError` naming the installed `tokenizers` version and the fix when the library lacks
    part of the API used here. Without it, a missing submodule is a raw ImportError from ``from tokenizers
    import ...`` and a missing ``Tokenizer.from_str`` reads as if the checkpoint's tokenizer.json were bad."""
    import tokenizers

    missing = [name for name in _TOKENIZERS_MODULES_USED if not hasattr(tokenizers, name)]
    missing += [
        f"Tokenizer.{name}" for name in _TOKENIZER_API_USED if not hasattr(tokenizers.Tokenizer, name)
    ]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        version = getattr(tokenizers, "__version__", "(version unknown)")
        raise TokenizerError(
            f"tokenizers {version} is installed, which lacks the API audiotrain's CLAP tokenizer uses "
            f'({shown}): pip install "tokenizers<1"'
        )


class ClapTokenizer:
    """Turns captions into ``input_ids`` / ``attention_mask`` arrays for :class:`ClapModel`.

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        A RoBERTa-style byte-level BPE with ``<s>``, ``</s>`` and ``<pad>`` tokens.
    max_length : int
        Tokens per caption including ``<s>`` and ``</s>``; longer captions are truncated.
    padding : {"max_length", "longest"}
        Pad every caption to ``max_length`` (LAION's behaviour) or to the longest one in the call.
    source : Path, optional
        Folder the tokenizer files came from (copied by :meth:`save_pretrained`).
    """

    def __init__(
        self,
        tokenizer,
        max_length: int = DEFAULT_MAX_LENGTH,
        padding: str = "max_length",
        source: Path | None = None,
    ) -> None:
        if padding not in ("max_length", "longest"):
            raise TokenizerError(f"padding must be 'max_length' or 'longest', got {padding!r}")
        max_length = _checked_max_length(max_length)
        self._tokenizer = tokenizer
        self.max_length = max_length
        self.padding = padding
        self.source = source
        # tokenizer_config.json's model_max_length (None where not stated): transformers' length when none
        # is given (`from_pretrained` sets it).
        self.model_max_length: int | None = None
        missing = [t for t in ("<s>", "</s>", "<pad>") if tokenizer.token_to_id(t) is None]
        if missing:
            raise TokenizerError(
                f"{source or 'tokenizer'}: no {', '.join(missing)} token (not a RoBERTa vocabulary)"
            )
        self.pad_token_id = tokenizer.token_to_id("<pad>")
        self.bos_token_id = tokenizer.token_to_id("<s>")
        self.eos_token_id = tokenizer.token_to_id("</s>")
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        self._cutting_at: dict[int, object] = {max_length: tokenizer}  # a call's max_length: its own copy

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, max_length: int | None = None, padding: str = "max_length"
    ) -> ClapTokenizer:
        """Read a checkpoint folder's ``tokenizer.json``, or build the BPE from ``vocab.json`` + ``merges.txt``
        (with the tokens ``added_tokens.json`` adds, as transformers reads them). ``tokenizer_config.json``'s
        ``add_prefix_space`` (false where unstated) is used with either, over tokenizer.json's, as transformers'
        RobertaTokenizer uses it.

        Parameters
        ----------
        folder : str or Path
            A checkpoint folder (not a hub id: ``CLAP(id).config.source`` is its folder). A file of it
            that is a link leading outside it is refused (`CheckpointError`), as `load_pretrained` refuses
            it.
        max_length : int, optional
            Tokens per caption, ``<s>`` and ``</s>`` included. Given, it is used as transformers uses an
            explicit ``max_length``: ``tokenizer_config.json``'s ``model_max_length`` does not lower it.
            Left out: 77 (LAION-CLAP's length), or ``model_max_length`` when that is smaller. Either way it
            is capped by what the folder's text tower accepts (``config.json``'s ``text_config``:
            ``max_position_embeddings - pad_token_id - 1``): the model itself would refuse longer rows.
        padding : {"max_length", "longest"}
        """
        from audiotrain.models.clap.loading import check_inside

        _check_tokenizers_api()
        from tokenizers import Tokenizer

        text = str(folder)
        folder = Path(folder).expanduser()  # ("~/ckpt", which CLAP() and load_pretrained take)
        if not folder.is_dir():
            # (said "no tokenizer.json" for a mistyped folder or a hub id, as if the folder lacked the files)
            hub_id = not folder.exists() and text.count("/") == 1 and not text.startswith((".", "/", "~"))
            raise TokenizerError(
                f"{folder}: "
                + ("expected a checkpoint folder, got a file" if folder.exists() else "no such folder")
                + (
                    "; from_pretrained takes a checkpoint folder, not a hub id: CLAP(id).config.source (or "
                    "load_pretrained(id)[1].source) is the folder the model was loaded from"
                    if hub_id
                    else ""
                )
            )
        for name in (*TOKENIZER_FILES, "config.json"):  # every file read here (config.json: its length limit)
            # (lexists: a listed file that cannot be read, a cache link whose blob is gone, is named, not
            # passed over for vocab.json + merges.txt or the default settings)
            if os.path.lexists(folder / name):
                check_inside(folder, folder / name)
                if name != "config.json":
                    # (a FIFO, which a read would wait on, or a folder: "no tokenizer.json" called it missing)
                    check_regular_file(folder / name, TokenizerError)
                    pointer = file_pointer_text(folder / name)  # (a repository cloned without Git LFS)
                    if pointer:
                        raise TokenizerError(f"{folder / name}: {pointer}")
        if (folder / "tokenizer.json").is_file():
            # transformers' RobertaTokenizer sets the ByteLevel pre-tokenizer's add_prefix_space to
            # tokenizer_config.json's (false where unstated), whatever tokenizer.json says: the first word of
            # every caption was another token than transformers' where the two files disagree. Set in the
            # JSON, not on the built pre-tokenizer: tokenizers 0.20 has no getter for its other settings
            # (trim_offsets, use_regex) to copy.
            add_prefix_space = _configured_add_prefix_space(folder)
            try:
                # (read by Python: the Rust library takes only a path that is valid UTF-8)
                spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
                pre = spec.get("pre_tokenizer") if isinstance(spec, dict) else None
                if isinstance(pre, dict) and pre.get("type") == "ByteLevel":
                    pre["add_prefix_space"] = add_prefix_space
                model = spec.get("model") if isinstance(spec, dict) else None
                if isinstance(model, dict) and model.get("type") == "BPE":
                    # transformers' RobertaTokenizer builds its BPE with dropout=None: a dropout saved with a
                    # trained BPE split each caption another way every call (other ids each time)
                    model["dropout"] = None
                tokenizer = Tokenizer.from_str(json.dumps(spec))
            # The Rust library raises a bare Exception. The API it needs was checked above, so what fails
            # here is the file.
            except Exception as error:
                raise TokenizerError(
                    f"{folder / 'tokenizer.json'}: cannot be read by `tokenizers` ({error})"
                ) from None
            _frame_as_roberta(tokenizer, add_prefix_space)
            _warn_of_non_roberta_steps(folder / "tokenizer.json", spec)
        elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            tokenizer = _roberta_from_vocab(folder)
        else:
            raise TokenizerError(
                training_output_note(folder)
                or f"{folder}: no tokenizer.json (or vocab.json + merges.txt); a CLAP checkpoint ships "
                "RoBERTa's tokenizer (transformers' ClapModel.save_pretrained writes the model alone: "
                "save the processor beside it, ClapProcessor.from_pretrained(SOURCE).save_pretrained("
                "folder), or copy tokenizer.json, tokenizer_config.json and any added_tokens.json from the "
                "checkpoint it came from)"
            )
        _warn_of_left_sides(folder / "tokenizer_config.json")
        tower, model_max_length = _folder_limits(folder)
        if max_length is None:
            max_length = min(DEFAULT_MAX_LENGTH, model_max_length or DEFAULT_MAX_LENGTH)
        else:  # (checked before it is compared with the folder's limits)
            max_length = _checked_max_length(max_length)
        if tower is not None:
            max_length = min(max_length, tower)
        made = cls(tokenizer, max_length=max_length, padding=padding, source=folder)
        made.model_max_length = model_max_length
        return made

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int = 1000, max_length: int = DEFAULT_MAX_LENGTH
    ) -> ClapTokenizer:
        """Train a small RoBERTa-format byte-level BPE on ``texts`` (for offline demos with no checkpoint).

        Special tokens get RoBERTa's ids: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, ``<mask>`` 4.
        """
        _check_tokenizers_api()
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(_SPECIALS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(list(texts), trainer)
        tokenizer.post_processor = processors.RobertaProcessing(
            ("</s>", 2), ("<s>", 0), add_prefix_space=False
        )
        return cls(tokenizer, max_length=max_length)

    # The arrays as `return_tensors` says, for checkers and editors: "mlx" gives MLX arrays.
    @overload
    def __call__(
        self,
        texts: str | Sequence[str] | None = None,
        *,
        text: str | Sequence[str] | None = None,
        padding: str | bool | None = None,
        truncation: str | bool | None = None,
        return_tensors: Literal["mlx"],
        max_length: int | None = None,
    ) -> dict[str, mx.array]: ...
    @overload
    def __call__(
        self,
        texts: str | Sequence[str] | None = None,
        *,
        text: str | Sequence[str] | None = None,
        padding: str | bool | None = None,
        truncation: str | bool | None = None,
        return_tensors: Literal["np"] | None = None,
        max_length: int | None = None,
    ) -> dict[str, np.ndarray]: ...
    @overload
    def __call__(
        self,
        texts: str | Sequence[str] | None = None,
        *,
        text: str | Sequence[str] | None = None,
        padding: str | bool | None = None,
        truncation: str | bool | None = None,
        return_tensors: str | None = None,
        max_length: int | None = None,
    ) -> dict[str, np.ndarray] | dict[str, mx.array]: ...
    def __call__(
        self,
        texts: str | Sequence[str] | None = None,
        *,
        text: str | Sequence[str] | None = None,
        padding: str | bool | None = None,
        truncation: str | bool | None = None,
        return_tensors: str | None = None,
        max_length: int | None = None,
    ) -> dict[str, np.ndarray] | dict[str, mx.array]:
        """Tokenize captions.

        Parameters
        ----------
        texts : str or sequence of str
            (anything else, bytes included, is a `TokenizerError` naming its type)
            A caption holding a lone surrogate (half of a UTF-16 pair) is a `TokenizerError` naming it.
        text : str or sequence of str, optional
            The captions by transformers' name for them (``tokenizer(text=captions)``), in place of ``texts``.
        padding : {None, "max_length", "longest", True}
            This call's padding in place of ``self.padding`` (None); True is "longest", as in transformers.
            False ("do_not_pad") is a `TokenizerError`: the rows of an array have one width.
        truncation : {None, True, "longest_first", "only_first"}
            Captions are always cut to ``max_length`` tokens (what the text tower takes): False
            ("do_not_truncate") is a `TokenizerError`.
        return_tensors : {None, "np", "mlx"}
            numpy arrays (None, "np") or MLX arrays ("mlx"); another ("pt") is a `TokenizerError`.
        max_length : int, optional
            This call's length in place of ``self.max_length`` (None), as in transformers: captions are cut
            to it and ``padding="max_length"`` pads to it. More than ``self.max_length`` is a
            `TokenizerError` (``from_pretrained(folder, max_length=N)`` makes a tokenizer for longer ones).

        Returns
        -------
        dict with ``input_ids`` and ``attention_mask``, both ``np.int32`` of shape ``(len(texts), L)`` where
        ``L = max_length`` (or the longest caption with ``padding="longest"``).
        """
        if text is not None:
            # (transformers' name, as ClapProcessor(text=...) takes it: it met a raw TypeError here)
            if texts is not None:
                raise TokenizerError("texts and text= are both given: pass the captions once")
            texts = text
        padding = _call_padding(padding, self.padding)
        length, encoder = self._cutting(max_length)
        if truncation not in (None, True, "longest_first", "only_first"):
            raise TokenizerError(
                f"truncation={truncation!r} is not available: captions are always cut to max_length "
                f"({length} tokens), what CLAP's text tower takes (None, True, 'longest_first')"
            )
        try:
            as_return_tensors({}, return_tensors, "ClapTokenizer")  # refused before the work, not after
        except ValueError as error:
            raise TokenizerError(str(error)) from None
        if isinstance(texts, str):
            texts = [texts]
        # None or a number met "'NoneType' object is not iterable"; bytes were read as ints ("texts[0] is a
        # int")
        if isinstance(texts, (bytes, bytearray)):
            raise TokenizerError("texts is bytes: decode it to a string first, e.g. texts.decode('utf-8')")
        try:
            texts = list(texts)
        except TypeError:
            raise TokenizerError(
                f"texts must be a string or a list of strings, got {type(texts).__name__}"
            ) from None
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TokenizerError(f"texts[{i}] is a {type(text).__name__}, expected a string")
            # (`tokenizers` refused it with "TextEncodeInput must be Union[...]", naming nothing)
            if (surrogate := lone_surrogate(text)) is not None:
                raise TokenizerError(f"texts[{i}] holds {surrogate}")
        limit = length * CAPTION_CHARS_PER_TOKEN
        texts = [text[:limit] for text in texts]
        try:
            encodings = encoder.encode_batch(texts)
        except BaseException as error:
            # A Rust panic (pyo3's PanicException, a BaseException so that no `except Exception` takes it),
            # such as a tokenizer.json regex that backtracks past onig's retry limit.
            if type(error).__name__ != "PanicException":
                raise
            raise self._failed(texts, error) from None
        width = length if padding == "max_length" else max((len(e.ids) for e in encodings), default=0)
        ids = np.full((len(encodings), width), self.pad_token_id, dtype=np.int32)
        mask = np.zeros((len(encodings), width), dtype=np.int32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        return as_return_tensors({"input_ids": ids, "attention_mask": mask}, return_tensors, "ClapTokenizer")

    def _cutting(self, max_length) -> tuple[int, object]:
        """A call's length (`self.max_length` for None) and the `tokenizers` tokenizer that cuts captions to
        it (a copy of this one's, kept: `enable_truncation` on this one would change every other call)."""
        if max_length is None:
            return self.max_length, self._tokenizer
        length = _checked_max_length(max_length)
        if length > self.max_length:
            raise TokenizerError(
                f"max_length={length} is more than this tokenizer's {self.max_length} tokens (the length it "
                f"was made with); ClapTokenizer.from_pretrained(folder, max_length={length}) makes one for "
                "longer captions, up to what the checkpoint's text tower takes"
            )
        if length not in self._cutting_at:
            cutter = type(self._tokenizer).from_str(self._tokenizer.to_str())
            cutter.no_padding()
            cutter.enable_truncation(length)
            self._cutting_at[length] = cutter
        return length, self._cutting_at[length]

    def _failed(self, texts: list[str], error: BaseException) -> TokenizerError:
        """The error for a batch `encode_batch` panicked on: the tokenizer file and the first caption it
        panics on alone (the panic does not say which)."""
        where = f"{self.source / 'tokenizer.json'}" if self.source is not None else "the tokenizer"
        said = str(error).splitlines()[0] if str(error) else type(error).__name__
        for i, text in enumerate(texts):
            try:
                self._tokenizer.encode(text)
            except BaseException as again:
                if type(again).__name__ != "PanicException":
                    raise
                shown = repr(text[:60]) + ("..." if len(text) > 60 else "")
                return TokenizerError(
                    f"{where}: the tokenizer fails on caption {i} of the batch, {shown} ({said}); "
                    "check its regular expressions (pre_tokenizer, normalizer)"
                )
        return TokenizerError(f"{where}: the tokenizer fails on this batch ({said})")

    def decode(self, ids: Sequence[int]) -> str:
        """Text of one row of ``input_ids`` without special tokens."""
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the tokenizer files into ``folder`` (copies of the originals when it was read from one)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        copied = False
        if self.source is not None:
            for name in TOKENIZER_FILES:
                if (self.source / name).is_file():
                    # Saved into the folder it was read from, the original is already there: writing the
                    # tokenizer out over it would state the run's max_length as model_max_length.
                    if (self.source / name).resolve() != (folder / name).resolve():
                        shutil.copyfile(self.source / name, folder / name)
                    copied = True
        if not copied:
            # Written by Python: the Rust library's `save` takes only a path that is valid UTF-8 (not a folder
            # named in Latin-1 bytes, as on an old disk or a Samba share).
            write_text_atomically(folder / "tokenizer.json", self._tokenizer.to_str(pretty=True))
            config = {
                "tokenizer_class": "RobertaTokenizer",
                "model_max_length": self.max_length,
                "bos_token": "<s>",
                "eos_token": "</s>",
                "pad_token": "<pad>",
                "unk_token": "<unk>",
                "mask_token": "<mask>",
                "cls_token": "<s>",
                "sep_token": "</s>",
                "add_prefix_space": False,
            }
            (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def _roberta_from_vocab(folder: Path):
    """RoBERTa's fast tokenizer rebuilt from the slow files (checkpoints without tokenizer.json)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    try:
        # (read by Python: the Rust library takes only paths that are valid UTF-8)
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    except Exception as error:
        raise TokenizerError(f"{folder}: vocab.json / merges.txt cannot be read ({error})") from None
    for number, line in enumerate(lines, start=1):
        # (a line of other than two tokens met pyo3's "failed to extract enum PyMerges", naming no line)
        if line and not line.startswith("#version") and len(line.split(" ")) != 2:
            raise TokenizerError(
                f"{folder / 'merges.txt'}: line {number}: expected two tokens separated by one space, got "
                f"{line[:60]!r}"
            )
    try:
        bpe = models.BPE(vocab, merges)
    except Exception as error:
        raise TokenizerError(f"{folder}: vocab.json / merges.txt cannot be read ({error})") from None
    add_prefix_space = _configured_add_prefix_space(folder)
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([t for t in _SPECIALS if bpe.token_to_id(t) is not None])
    _add_saved_tokens(tokenizer, folder / "added_tokens.json")
    eos, bos = bpe.token_to_id("</s>"), bpe.token_to_id("<s>")
    if eos is None or bos is None:
        raise TokenizerError(f"{folder / 'vocab.json'}: no <s> / </s> tokens (not a RoBERTa vocabulary)")
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", eos), ("<s>", bos), add_prefix_space=add_prefix_space
    )
    return tokenizer


def _frame_as_roberta(tokenizer, add_prefix_space: bool) -> None:
    """Put ``<s>`` before and ``</s>`` after every caption, as transformers' RobertaTokenizer does whatever
    tokenizer.json's post_processor says: one saved as null (a BPE trained with `tokenizers` and saved as it
    is) gave rows without them, and CLAP's text tower pools the first position. Without the two tokens the
    tokenizer is refused where it is made."""
    from tokenizers import processors

    eos, bos = tokenizer.token_to_id("</s>"), tokenizer.token_to_id("<s>")
    if eos is not None and bos is not None:
        tokenizer.post_processor = processors.RobertaProcessing(
            ("</s>", eos), ("<s>", bos), add_prefix_space=add_prefix_space
        )


def _warn_of_non_roberta_steps(path: Path, spec) -> None:
    """Warn where tokenizer.json has a normalizer or a pre-tokenizer other than RoBERTa's (none; ByteLevel):
    they are used here, as the file says, but transformers 5's RobertaTokenizer rebuilds both as RoBERTa's,
    so the same caption got other ids there ("A DOG" lowercased here, not there) without a word."""
    if not isinstance(spec, dict):
        return
    steps = []
    if isinstance(spec.get("normalizer"), dict):
        steps.append(f"normalizer {spec['normalizer'].get('type')!r}")
    pre = spec.get("pre_tokenizer")
    if isinstance(pre, dict) and pre.get("type") != "ByteLevel":
        steps.append(f"pre_tokenizer {pre.get('type')!r}")
    if steps:
        warnings.warn(
            f"{path}: its {' and '.join(steps)} is used here, but transformers' RobertaTokenizer replaces it "
            "with RoBERTa's (no normalizer, a ByteLevel pre-tokenizer), so its ids differ from these",
            UserWarning,
            stacklevel=3,
        )


def _call_padding(padding, default: str) -> str:
    """A call's `padding` (transformers' values) as "max_length" or "longest"; None is `default`."""
    if padding is None:
        return default
    if padding is True or padding == "longest":
        return "longest"
    if padding == "max_length":
        return "max_length"
    raise TokenizerError(
        f"padding={padding!r} is not available: the ids come back as one array, each row padded to "
        "max_length ('max_length') or to the longest caption ('longest' or True)"
    )


def _checked_max_length(max_length) -> int:
    """`max_length` as an int, or a `TokenizerError` naming it: a string or a float met a raw TypeError
    naming no parameter ("'<' not supported between instances of 'str' and 'int'")."""
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 3:
        raise TokenizerError(
            f"max_length must be at least 3 (<s>, one token, </s>) and a whole number, got {max_length!r}"
        )
    return int(max_length)


def _warn_of_left_sides(config_path: Path) -> None:
    """Warn where ``tokenizer_config.json`` asks transformers to pad or truncate on the left: audiotrain keeps
    the head of a caption and pads on the right (CLAP's text tower pools the first position), so its ids
    differ from transformers' there; they differed silently."""
    try:
        config = read_json_file(config_path, ValueError)
    except ValueError:
        return  # absent or unreadable: no side asked for (a bad file fails where it is read)
    if not isinstance(config, dict):
        return
    sides = [
        f"{key} {config[key]!r}" for key in ("padding_side", "truncation_side") if config.get(key) == "left"
    ]
    if sides:
        warnings.warn(
            f"{config_path}: {' and '.join(sides)} is not used: audiotrain truncates a caption's end and pads "
            "on the right, as CLAP's text tower expects (it pools the first position); transformers would "
            "follow the file, so the ids differ from its",
            UserWarning,
            stacklevel=3,
        )


def _configured_add_prefix_space(folder: Path) -> bool:
    """``tokenizer_config.json``'s ``add_prefix_space``: false where the file or the key is absent, as
    transformers' RobertaTokenizer defaults it."""
    config_path = folder / "tokenizer_config.json"
    if not config_path.is_file():
        return False
    config = read_json_file(config_path, TokenizerError)
    if not isinstance(config, dict):
        raise TokenizerError(f"{config_path}: expected a JSON object, got {type(config).__name__}")
    add_prefix_space = config.get("add_prefix_space", False)
    if not isinstance(add_prefix_space, bool):
        raise TokenizerError(
            f"{config_path}: add_prefix_space: expected true or false, got {add_prefix_space!r}"
        )
    return add_prefix_space


def _add_saved_tokens(tokenizer, path: Path) -> None:
    """Add the tokens of `path` (``added_tokens.json``, {token: id}), as transformers' RobertaTokenizer does:
    tokens added to a vocabulary (``add_tokens`` then ``save_pretrained``) are kept there, not in vocab.json.
    Without them each was split into byte-level pieces: other ids than transformers', silently."""
    if not path.is_file():
        return
    added = read_json_file(path, TokenizerError)
    if not isinstance(added, dict) or not all(type(i) is int for i in added.values()):
        raise TokenizerError(f"{path}: expected a JSON object of token: id (a whole number)")
    for token, token_id in sorted(added.items(), key=lambda item: item[1]):
        if tokenizer.token_to_id(token) == token_id:
            continue  # already in vocab.json (RoBERTa's <mask> is listed in both by some exports)
        # `tokenizers` gives an added token the next id: any other would encode as another id than the file's
        following = tokenizer.get_vocab_size(with_added_tokens=True)
        if token_id != following:
            raise TokenizerError(
                f"{path}: {token!r} has id {token_id}, expected {following} (the ids after vocab.json's, in "
                "order)"
            )
        tokenizer.add_tokens([token])


def _folder_limits(folder: Path) -> tuple[int | None, int | None]:
    """The token limits a checkpoint folder states, for `from_pretrained`: what its text tower accepts
    (``config.json``) and ``tokenizer_config.json``'s ``model_max_length``; None where a file does not say."""
    limits = []
    for name, read in (
        (
            "config.json",
            lambda c: (
                c["text_config"]["max_position_embeddings"] - c["text_config"].get("pad_token_id", 1) - 1
            ),
        ),
        ("tokenizer_config.json", lambda c: c["model_max_length"]),
    ):
        try:
            limit = read(read_json_file(folder / name, ValueError))
        except (ValueError, KeyError, TypeError):
            limit = (
                None  # absent or without the field: that file states no limit (a bad file fails elsewhere)
            )
        limits.append(limit if isinstance(limit, int) and limit >= 3 else None)
    return limits[0], limits[1]
