"""The ``predict`` command: transcribe an audio file, or every audio file of a folder."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from audiotrain._files import OutputWriteError
from audiotrain._invocation import recipe_command
from audiotrain._overlap import work_behind
from audiotrain._text import audio_speed, listed, plural
from audiotrain.audio import UNREADABLE_AUDIO_SUFFIXES, AudioError, SkipCounter
from audiotrain.chords.lab import jams_text, write_jams, write_lab
from audiotrain.datasets._folders import (
    AUDIO_FILE_SUFFIXES,
    as_stored,
    distinguishable,
    hidden_note,
    is_hidden,
    one_file_kind,
    walk_visible_following_links,
)
from audiotrain.recipes._run import (
    TRANSCRIPTION_COMPILE_WAIT,
    check_can_write,
    check_kernel_cache,
    name_too_long,
    nonempty_path,
    path_flag,
    refuse_a_folder_not_searchable,
    refuse_outputs_of_a_live_run,
    shell_command,
)

# SettingsParser, folds_case and refuse_existing_outputs are looked up in the cli module, where
# the tests patch them.
from audiotrain.recipes.chords import cli
from audiotrain.recipes.chords.cli_predictor import _load_predictor, _predictor_arguments, _print_to_stderr
from audiotrain.recipes.chords.data import (
    RUN_OUTPUTS,
    TranscriptionProgress,
    header_seconds,
    say_long_recording,
)
from audiotrain.recipes.chords.predict import (
    SongPosteriors,
    annotations_in_the_way,
    one_file_reason,
    output_paths,
    silence_note,
)
from audiotrain.recipes.config_cli import add_overwrite_argument, without_overwrite
from audiotrain.train.checkpoint import is_checkpoint_folder
from audiotrain.train.interrupt import stop_on_signals, stop_signal_name, stop_status

#: What predict takes from a folder: every suffix the loader reads, and the audio containers it does not (m4a,
#: wma, ...), which are then skipped and listed with how to convert them rather than passed over unsaid.
PREDICTED_SUFFIXES = AUDIO_FILE_SUFFIXES | UNREADABLE_AUDIO_SUFFIXES


def _cmd_predict(argv: list[str]) -> int:
    parser = cli.SettingsParser(
        prog="python -m audiotrain.recipes.chords predict",
        description="Transcribe chords of an audio file or of every audio file in a folder (symlinked sub-folders "
        "too). In a folder, files that cannot be read are skipped and listed, and the exit status is 1. An existing "
        "chord annotation (x.lab or x.jams beside x.wav, which training reads) is never replaced without "
        "--overwrite. Ctrl-C or SIGTERM stops after the file being transcribed (a second one at once), says what "
        "was written, and exits with 130 or 143; --skip_existing then goes on where it stopped.",
    )
    parser.add_argument("input", type=path_flag, help="an audio file, or a folder (searched recursively)")
    parser.add_argument(
        "-o", "--output", default=None, type=nonempty_path,
        help="for a file: the .lab (or .jams) to write, or a folder to write <stem>.lab into "
        "(<name>.lab where audio of the same stem is beside it: song.mp3.lab; default, and -o -: print to "
        "stdout); for a folder: the output folder (default: <input>-chords next to it), mirroring the "
        "input's sub-folders",
    )  # fmt: skip
    parser.add_argument(
        "--format", choices=("lab", "jams"), default=None,
        help="output format for folders, for a file written into a folder, and for stdout (default: lab); an -o "
        "file is written in its suffix's (.lab; .jams or .jamz), a --format naming the other refused, or in this "
        "one where its suffix is neither",
    )  # fmt: skip
    add_overwrite_argument(
        parser,
        help="replace existing chord annotations beside the audio, and earlier outputs in -o (or "
        "<input>-chords); never an audio file",
    )
    parser.add_argument(
        "--skip_existing", action="store_true",
        help="keep the outputs already there (e.g. of a run Ctrl-C stopped) and transcribe only the inputs "
        "that have none",
    )  # fmt: skip
    _predictor_arguments(parser)
    args, extra = parser.parse_known_args(argv)
    if extra:
        inputs = [arg for arg in extra if not arg.startswith("-")]
        if inputs and len(inputs) == len(extra):  # more audio files after the first: a habit of other tools
            parser.error(
                f"predict takes one audio file or one folder, got {len(inputs) + 1} inputs ({args.input}, "
                f"{', '.join(inputs)}): put the files in a folder and give it (with -o OUT_DIR), or run predict "
                "once per file"
            )
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # Audio is read from a file, by seeking in it (a WAV's chunks, an MP3's frames): a pipe cannot serve.
    from_stdin = (
        "predict reads audio from a file or a folder, not from stdin or a pipe: save the audio to a file"
    )
    if str(args.input) == "-" and not args.input.exists():  # (as -o - is stdout; a file named - is a file)
        print(f"error: input -: {from_stdin}", file=sys.stderr)
        return 2
    args.input = as_stored(args.input)  # (typed composed, a Mac's decomposed name on disk: found as there)
    if not args.input.exists():
        # A broken link shows in `ls`: "does not exist" alone sent the user looking for a typo.
        broken = ""
        if args.input.is_symlink():
            broken = f" (a symlink to {os.readlink(args.input)}, which does not exist)"
        print(f"error: {args.input} does not exist{broken}", file=sys.stderr)
        return 2
    if not (args.input.is_file() or args.input.is_dir()):
        # A FIFO or a device (a link to /dev/zero) was searched as a folder: "no audio files in it".
        pipe = f"; {from_stdin}" if stat.S_ISFIFO(args.input.stat().st_mode) else ""
        print(
            f"error: {args.input} is not a regular file or a folder (a FIFO or a device){pipe}",
            file=sys.stderr,
        )
        return 2
    if args.overwrite and args.skip_existing:
        raise ValueError("--overwrite replaces earlier outputs and --skip_existing keeps them; give one")
    if args.output == "-":  # stdout, as many tools read it: where a file's transcription goes without -o
        if not args.input.is_file():
            raise ValueError(
                f"-o -: a folder input ({args.input}) writes one file per song, which stdout cannot take; "
                "give an output folder (or none: <input>-chords)"
            )
        args.output = None
    # (stdout may be the transcription)
    check_kernel_cache(log=_print_to_stderr, wait=TRANSCRIPTION_COMPILE_WAIT)
    if args.input.is_file():
        return _predict_file(args)
    return _predict_folder(args, argv)


def _predict_file(args: argparse.Namespace) -> int:
    """``predict FILE``: the transcription to -o (a file, or a folder) or to stdout. A stop signal stops at
    once: there is one file."""
    target, file_format = None, args.format or "lab"
    if args.output is not None:
        target = Path(args.output)
        _refuse_name_too_long(target, args.output)  # (is_dir itself fails on such a name)
        if target.is_dir() or args.output.endswith(("/", os.sep)):
            target = _output_in_folder(args.input, target, f".{file_format}")
            _refuse_name_too_long(target, args.output)
        file_format = _output_file_format(target, args.format)
        _refuse_audio_as_output(target, args.input)  # with --overwrite too: it is no earlier output
        _refuse_inside_checkpoint(target.parent, args.output)
        if args.skip_existing and (target.exists() or target.is_symlink()):
            older = ""
            if _changed_since(args.input, target):
                older = f"; older than {args.input}, changed since: pass --overwrite to redo it"
            print(f"kept {target}, there already (--skip_existing){older}")
            return 0
        _refuse_to_replace_annotations([target], args.overwrite)
        refuse_outputs_of_a_live_run([target], f"-o {args.output}", RUN_OUTPUTS)  # (--overwrite too)
        cli.refuse_existing_outputs([target], args.overwrite, can_skip=True)
        check_can_write(target.parent, f"-o {args.output}")
    elif args.skip_existing:
        raise ValueError(
            "--skip_existing keeps an output already there; without -o the transcription is printed"
        )
    heard: list[int] = []

    def every_signal_stops(signum: int) -> bool:
        heard.append(signum)
        return True  # (raise KeyboardInterrupt)

    with stop_on_signals(every_signal_stops):
        try:
            start = time.perf_counter()
            predictor = _load_predictor(args)
            say_long_recording(args.input)
            post = predictor.posteriors(args.input)
            segments = predictor.segments(post)
            if post.silent:
                print(f"note: {silence_note(args.input)}", file=sys.stderr)
            # `print`, which writes nothing to a closed stdout (`>&-`: None in Python), as the other commands.
            if target is None and file_format == "jams":
                print(jams_text(segments, duration=post.duration, title=args.input.stem))
            elif target is None:
                print("".join(f"{s.start:.6f}\t{s.end:.6f}\t{s.label}\n" for s in segments), end="")
            else:
                _write_prediction(
                    target, file_format, segments, post.duration, args.input.stem, args.overwrite
                )
                # What was written where, as predict FOLDER says it (stdout is free: the output is a file).
                print(f"wrote {target} ({audio_speed(post.duration, time.perf_counter() - start)})")
        except KeyboardInterrupt:
            signum = heard[0] if heard else signal.SIGINT
            print(
                f"interrupted ({stop_signal_name(signum)}) before {args.input} was transcribed: nothing written",
                file=sys.stderr,
            )
            return stop_status(signum)
        except OutputAppeared:
            raise FileExistsError(
                f"{target} appeared while predicting (written by another program since the start); not "
                "replaced, and the transcription is not written: pass --overwrite to replace it, or write "
                "elsewhere with -o"
            ) from None
    return 0


def _changed_since(audio: Path, output: Path) -> bool:
    """Whether `audio` was modified after `output` (its transcription) was written; False where either
    cannot be read."""
    try:
        return os.stat(audio).st_mtime > os.stat(output).st_mtime
    except OSError:
        return False


def _output_in_folder(audio: Path, folder: Path, suffix: str) -> Path:
    """The file ``predict FILE -o FOLDER/`` writes: ``<stem><suffix>``, or, where audio of the same stem lies
    beside `audio` (``song.wav`` and ``song.mp3``), ``<name><suffix>`` (``song.mp3.lab``), as ``predict`` on
    their folder names it: one at a time into one folder, each wrote ``song.lab``, and --skip_existing kept
    the first's transcription as the second's. Every visible audio file of the folder is named, not only
    those of the stem: ``song.wav.flac`` beside those two gets ``song.wav.flac.lab``, ``song.wav``'s being
    ``song.wav.lab``."""
    try:
        siblings = [
            path
            for path in audio.parent.iterdir()
            if path.suffix.lower() in PREDICTED_SUFFIXES and not is_hidden(path.name)
        ]
    except OSError:  # (a folder that cannot be listed: no sibling known)
        siblings = []
    if audio not in siblings:
        siblings.append(audio)
    targets, renamed, _ = output_paths(
        siblings, audio.parent, folder, suffix, fold_case=cli.folds_case(folder)
    )
    target = targets.get(audio, folder / f"{audio.name}{suffix}")  # (X.wav beside x.wav on macOS: its own)
    if audio in renamed:
        # (the neighbours whose output its plain name would be: of its stem, or one keeping its suffix)
        plain = f"{audio.stem}{suffix}"
        others = ", ".join(
            sorted(
                path.name
                for path in siblings
                if path != audio
                and (
                    path.stem.casefold() == audio.stem.casefold()
                    or targets.get(path, folder).name.casefold() == plain.casefold()
                )
            )
        )
        print(
            f"note: {audio.name}'s output would be named {plain}, as {others}'s would; its output keeps the "
            f"audio suffix: {target}",
            file=sys.stderr,
        )
    return target


class OutputAppeared(FileExistsError):
    """An output file that was absent at a predict's start and is there when its output is written."""


def _write_prediction(
    target: Path, file_format: str, segments: list, duration: float, title: str, overwrite: bool
) -> None:
    """Write one transcription (the whole file or none). Without --overwrite the file is created only if
    its name is still free: one that appeared since the start's check (a hand annotation, another
    predict's output) is `OutputAppeared`, and left as it is."""
    try:
        if file_format == "jams":  # write_jams gzips .jamz
            write_jams(target, segments, duration=duration, title=title, replace=overwrite)
        else:
            write_lab(target, segments, replace=overwrite)
    except FileExistsError:
        if overwrite or not (target.exists() or target.is_symlink()):
            raise  # (a parent that is a file: not the output appearing)
        raise OutputAppeared(str(target)) from None


def _output_file_format(target: Path, asked: str | None) -> str:
    """The format of the output file `target` (-o): its suffix's (.lab; .jams or .jamz), else `asked`
    (``--format``; default lab). A --format that names the other format than the suffix is refused."""
    named = {".lab": "lab", ".jams": "jams", ".jamz": "jams"}.get(target.suffix.lower())
    if named is not None and asked is not None and asked != named:
        raise ValueError(
            f"--format {asked} but -o {target} names a .{named} file; name a .{asked} file, or leave --format out"
        )
    return named or asked or "lab"


def _predict_folder(args: argparse.Namespace, argv: list[str]) -> int:
    """``predict FOLDER``: one output per audio file, mirroring the folder. A first stop signal stops after
    the file being transcribed, a second at once; either way what was written is said, and the command that
    goes on (``--skip_existing``) printed."""
    entries, hidden, not_entered = walk_visible_following_links(args.input)
    # Broken links and folders named like audio stay in: the loader skips each by name (a symlink to a
    # missing file, a folder), and the exit status says that not every input was transcribed.
    files = [p for p in entries if p.suffix.lower() in PREDICTED_SUFFIXES]
    if hidden:
        print(f"note: {hidden_note(hidden, args.input)}", file=sys.stderr)
    if not_entered:
        links = listed([f"{p} (-> {os.path.realpath(p)})" for p in not_entered])
        print(
            f"note: {len(not_entered)} folder{'s' * (len(not_entered) > 1)} reached through links not entered, "
            "being folders transcribed already (a link back up the tree, or a second way to one folder): "
            f"{links}",
            file=sys.stderr,
        )
    if not files:
        readable = ", ".join(sorted(AUDIO_FILE_SUFFIXES))
        print(f"error: no audio files ({readable}) in {args.input}", file=sys.stderr)
        return 2
    file_format = args.format or "lab"
    # Made absolute first: "." and "x/.." name no folder to put "-chords" after. Not resolved: the output of
    # a link to a folder goes beside the link, under its name, as the help says, not beside its target.
    source = Path(os.path.abspath(args.input))
    out_dir = Path(args.output) if args.output else source.with_name(source.name + "-chords")
    _refuse_name_too_long(out_dir, str(out_dir))
    refuse_a_folder_not_searchable(out_dir, f"-o {out_dir}")
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(
            f"-o {out_dir} is a file; a folder input ({args.input}) needs an output folder, where one file "
            "per song is written"
        )
    if not out_dir.is_dir() and out_dir.suffix.lower() in (".lab", ".jams", ".jamz"):
        # A file's command (-o song.lab) given a folder made a folder named song.lab of its songs' files.
        raise ValueError(
            f"-o {out_dir} is named like one {out_dir.suffix} file, but a folder input ({args.input}) "
            "needs an "
            f"output folder, where one file per song is written (e.g. -o {source.name}-chords)"
        )
    check_can_write(
        out_dir, f"-o {out_dir}" if args.output else f"the output folder {out_dir} (choose one with -o)"
    )
    # x.wav and X.wav have outputs of their own on Linux; on macOS's and Windows' file systems x.lab is X.lab.
    # (Names that differ only in Unicode form share one everywhere: one name on macOS, one song to training.)
    targets, renamed, clashing = output_paths(
        files, args.input, out_dir, f".{file_format}", fold_case=cli.folds_case(out_dir)
    )
    if renamed:
        print(
            f"note: {len(renamed)} audio files share a stem with another in their folder; their outputs keep "
            f"the audio suffix (e.g. {targets[renamed[0]].name})",
            file=sys.stderr,
        )
    for group in clashing:
        print(
            f"skipped: {', '.join(distinguishable(group))}: {one_file_reason(group, out_dir)}",
            file=sys.stderr,
        )
    # An output name over the file system's limit (a long stem that keeps its audio suffix), or a path over
    # the system's (deep sub-folders mirrored under a longer -o), is skipped, and listed, before any song is
    # transcribed: the others are still written.
    files = [path for path in files if path in targets]
    unwritable = {path: why for path in files if (why := name_too_long(targets[path])) is not None}
    for path, why in unwritable.items():
        print(f"skipped: {path}: cannot write its output {targets[path].name}: {why}", file=sys.stderr)
    files = [path for path in files if path not in unwritable]
    kept = [path for path in files if targets[path].exists() or targets[path].is_symlink()]
    if args.skip_existing:
        files = [path for path in files if path not in kept]
        older = [path for path in kept if _changed_since(path, targets[path])]
        if older:  # (a mix exported again since: its transcription is of the audio that was there)
            names = listed([path.relative_to(args.input) for path in older])
            verb = "are" if len(older) > 1 else "is"
            print(
                f"note: {len(older)} of the outputs kept (--skip_existing) {verb} older than the audio, "
                f"changed since: {names}; remove those outputs to transcribe them again, or pass --overwrite "
                "instead to transcribe all",
                file=sys.stderr,
            )
    _refuse_inside_checkpoint(out_dir, str(out_dir))
    _refuse_to_replace_annotations([targets[path] for path in files], args.overwrite)  # before any work
    refuse_outputs_of_a_live_run([targets[path] for path in files], f"-o {args.output}", RUN_OUTPUTS)
    cli.refuse_existing_outputs([targets[path] for path in files], args.overwrite, can_skip=True)
    start, audio_seconds = time.perf_counter(), 0.0
    skipped = SkipCounter()
    silent: list[Path] = []
    done: set[Path] = set()  # transcribed, or skipped as unreadable
    written_to: set[Path] = set()  # the count printed is of files on disk
    appeared: list[Path] = []  # outputs another program wrote since the check above: not replaced
    current: Path | None = None
    stopped_by_signal: int | None = None

    def request_stop(signum: int) -> bool:
        nonlocal stopped_by_signal
        if stopped_by_signal is not None or current is None:  # a second signal, or no file under way
            stopped_by_signal = stopped_by_signal or signum
            return True  # (raise KeyboardInterrupt)
        stopped_by_signal = signum
        name = stop_signal_name(signum)
        again = "Ctrl-C again" if name == "Ctrl-C" else f"{name} or Ctrl-C again"
        print(f"\n{name}: stopping after {current} ({again} to stop at once)", file=sys.stderr)
        return False

    write_failed = None  # an OutputWriteError that ended the loop
    with stop_on_signals(request_stop):
        try:
            predictor = _load_predictor(args)

            def transcribed() -> Iterator[tuple[Path, SongPosteriors]]:
                nonlocal current
                progress = TranscriptionProgress(len(files), "file", header_seconds(files))
                for count, path in enumerate(files):
                    progress.done(count)
                    if stopped_by_signal is not None:
                        break
                    current = path
                    say_long_recording(path)
                    try:
                        post = predictor.posteriors(path)
                    except AudioError as error:  # one broken file must not cost the rest of the folder
                        skipped.record(error)
                        print(f"skipped: {error}", file=sys.stderr)
                        done.add(path)
                        continue
                    yield path, post

            # A file is decoded while the model reads the next (`work_behind`); its output is written after.
            for (path, post), segments in work_behind(
                transcribed(), lambda item: predictor.segments(item[1]), "audiotrain-decode"
            ):
                audio_seconds += post.duration
                if post.silent:
                    silent.append(path)
                    print(f"note: {silence_note(path)}", file=sys.stderr)
                try:
                    _write_prediction(
                        targets[path], file_format, segments, post.duration, path.stem, args.overwrite
                    )
                except OutputAppeared:
                    appeared.append(targets[path])
                    print(
                        f"skipped: {targets[path]} appeared while predicting; not replaced", file=sys.stderr
                    )
                    done.add(path)
                    continue
                except OutputWriteError as error:  # a full disk: the files after it would fail the same way
                    write_failed = error
                    break
                except OSError as error:  # a name limit the file system did not report (eCryptfs: 143 bytes)
                    if error.errno != errno.ENAMETOOLONG:
                        raise
                    unwritable[path] = f"the file system refused its name as too long ({error.strerror})"
                    print(
                        f"skipped: {path}: cannot write its output {targets[path].name}: {unwritable[path]}",
                        file=sys.stderr,
                    )
                    done.add(path)
                    continue
                written_to.add(targets[path])
                done.add(path)
        except KeyboardInterrupt:
            stopped_by_signal = stopped_by_signal or signal.SIGINT
        current = None
    elapsed = time.perf_counter() - start
    written = len(written_to)
    if skipped.total:  # (each was listed as it was met: counted here, as the other skips below)
        print(
            f"skipped {plural(skipped.total, 'audio file')} that could not be read (listed above)",
            file=sys.stderr,
        )
    if unwritable:
        print(
            f"skipped {len(unwritable)} audio file{'s' * (len(unwritable) > 1)} whose output name or path is "
            "too long for the file system (listed above): rename them, write to a shorter -o, or transcribe "
            "each to a name of your choice (predict FILE -o NAME.lab)",
            file=sys.stderr,
        )
    if appeared:
        print(
            f"skipped {len(appeared)} output{'s' * (len(appeared) > 1)} that appeared while predicting "
            "(written by another program since the start; listed above), not replaced: pass --overwrite to "
            "replace them",
            file=sys.stderr,
        )
    if clashing:
        count = sum(len(group) for group in clashing)
        kinds = " or ".join(sorted({one_file_kind(group) for group in clashing}))
        print(
            f"skipped {count} audio files whose outputs differ only in {kinds} (listed above): rename them",
            file=sys.stderr,
        )
    if silent:
        print(
            f"note: {len(silent)} of the files {'are' if len(silent) > 1 else 'is'} digital silence (listed "
            "above), transcribed as N",
            file=sys.stderr,
        )
    kept_note = f"; kept {len(kept)} there already (--skip_existing)" if args.skip_existing and kept else ""
    if write_failed is not None or stopped_by_signal is not None:
        why = (
            f"error: {write_failed};"
            if write_failed
            else f"interrupted ({stop_signal_name(stopped_by_signal)}):"
        )
        _say_where_predict_stopped(
            args, argv, why, [p for p in files if p not in done], written, len(files),
            out_dir, kept_note, stale=[p for p in files if p not in done and p in kept],
        )  # fmt: skip
        return 1 if write_failed else stop_status(stopped_by_signal)
    # (the outputs --skip_existing kept are this command's too: a stopped run's, not another model's)
    _say_other_outputs(out_dir, [targets[path] for path in [*files, *kept]], file_format)
    speed = f" ({audio_speed(audio_seconds, elapsed)})" if audio_seconds else ""
    print(f"wrote {plural(written, f'.{file_format} file')} to {out_dir}{speed}{kept_note}")
    return 1 if skipped.total or unwritable or clashing or appeared else 0


def _say_other_outputs(out_dir: Path, planned: list[Path], file_format: str) -> None:
    """Name the transcriptions in `out_dir` this command did not write (nor keep): a second submission into
    the first's folder, of fewer songs or another model, left a folder of two models' files that `score`
    and a submission read as one's, and said only 'wrote 1 .lab file'."""
    ours = {os.path.normcase(os.path.abspath(path)) for path in planned}
    others = []
    for folder, folders, names in os.walk(out_dir):
        # Hidden names are no transcription (`score` leaves them out): macOS's AppleDouble twins ``._a.lab``
        # beside each output on an exFAT drive were counted as another model's.
        folders[:] = [name for name in folders if not is_hidden(name)]
        others += [
            Path(folder, name).relative_to(out_dir).as_posix()
            for name in names
            if name.lower().endswith(f".{file_format}")
            and not is_hidden(name)
            and os.path.normcase(os.path.abspath(os.path.join(folder, name))) not in ours
        ]
    others.sort()
    if others:
        print(
            f"note: {out_dir} also holds {plural(len(others), f'.{file_format} file')} this command did not "
            f"write ({listed(others)}): earlier outputs, kept; write each model's transcriptions to a folder "
            "of their own to score or submit them",
            file=sys.stderr,
        )


def _say_where_predict_stopped(
    args: argparse.Namespace,
    argv: list[str],
    why: str,
    left: list[Path],
    written: int,
    planned: int,
    out_dir: Path,
    kept_note: str,
    stale: list[Path],
) -> None:
    """The lines a stopped ``predict FOLDER`` ends with (`why`: a signal, or a full disk): what it wrote, what
    it did not transcribe, and the command that goes on (the same, with ``--skip_existing`` for
    ``--overwrite``)."""
    names = listed([path.relative_to(args.input) for path in left])
    print(
        f"{why} wrote {written} of {planned} .{args.format or 'lab'} "
        f"files to {out_dir}{kept_note}" + (f"; not transcribed: {names}" if left else ""),
        file=sys.stderr,
    )
    if not left:  # (the signal came as the last file was done)
        return
    again = without_overwrite(argv)
    again += [] if args.skip_existing else ["--skip_existing"]
    print(
        "go on with: " + shell_command(*recipe_command("audiotrain.recipes.chords", "predict"), *again),
        file=sys.stderr,
    )
    if stale:  # (--overwrite: their outputs are from before this run, which --skip_existing would keep)
        print(
            f"note: {len(stale)} of the files not transcribed have an output from before this run, which "
            "--skip_existing keeps; pass --overwrite instead to transcribe them all again",
            file=sys.stderr,
        )


def _refuse_name_too_long(target: Path, output: str) -> None:
    """Raise (before any work) if the file system cannot take the name of `target` (given as ``-o output``):
    it was found by the write, after the transcription, as a raw OSError."""
    too_long = name_too_long(target)
    if too_long:
        raise ValueError(f"-o {output}: cannot write {target.name}: {too_long}; choose a shorter name")


def _refuse_inside_checkpoint(folder: Path, output: str) -> None:
    """Raise (before any work, whatever --overwrite says) if `folder` is a checkpoint folder or inside one:
    transcriptions written beside the model that made them (checkpoints/epoch=001) do not stay beside it.
    Training keeps a user's files when it replaces a checkpoint (`checkpoint._keep_users_files`), but a new
    best puts them beside another model's weights and --save_keep leaves them in a folder with no model."""
    for checkpoint in (folder, *folder.parents):
        if is_checkpoint_folder(checkpoint):
            raise ValueError(
                f"-o {output} is inside the checkpoint folder {checkpoint}, which training replaces or "
                "removes (a new best, --save_keep): the transcriptions would then sit beside another model's "
                "weights or in a folder with no model. Write them elsewhere (e.g. -o predictions/NAME beside "
                "the run)"
            )


def _refuse_audio_as_output(target: Path, audio: Path) -> None:
    """Raise (before any work, whatever --overwrite says) if `target` is the input audio or named like audio:
    a typo such as ``-o song.wav`` would otherwise write chord text over a recording."""
    if target.exists() and target.samefile(audio):
        raise FileExistsError(
            f"-o {target} is the input audio; write a .lab or .jams (e.g. -o {audio.with_suffix('.lab')})"
        )
    if target.suffix.lower() in AUDIO_FILE_SUFFIXES | UNREADABLE_AUDIO_SUFFIXES:
        raise ValueError(
            f"-o {target} is named like an audio file ({target.suffix}); predict writes chord annotations: "
            f"name a .lab or .jams (e.g. -o {target.with_suffix('.lab')})"
        )


def _refuse_to_replace_annotations(targets, overwrite: bool) -> None:
    """Raise (before any work) if writing `targets` would replace or shadow a chord annotation."""
    if overwrite:
        return
    blocked = annotations_in_the_way(targets)
    if blocked:
        targets = listed([f"{t} (beside {audio.name})" for t, audio in blocked], sep="; ")
        raise FileExistsError(
            f"refusing to write {targets}: training reads a .lab or .jams beside audio of the same stem "
            "as its chord annotation, and one is there already. Write elsewhere with -o, or pass --overwrite"
        )
