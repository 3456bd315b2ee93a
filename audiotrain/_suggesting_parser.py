"""An `argparse.ArgumentParser` for the light commands (`runs`, `cache`, `info`) whose "unrecognized
arguments" error names the flag meant (``--jsn``: did you mean --json?), as the recipes' settings parser does
(`recipes.config_cli.SettingsParser`, which loads the recipes and MLX, too heavy for a listing)."""

from __future__ import annotations

import argparse
import difflib
import sys

#: How close a misspelt flag must be to a known one (difflib's default 0.6 offers --logger for --lr).
CUTOFF = 0.75


class SuggestingParser(argparse.ArgumentParser):
    """Its sub-parsers (`add_subparsers`) are SuggestingParsers too: argparse makes them of its type."""

    def parse_known_args(self, args=None, namespace=None):
        # Kept for `error`: the words given, and which sub-command, whose flags alone may be the one meant.
        self._given = list(sys.argv[1:] if args is None else args)
        self._parsed, extras = super().parse_known_args(args, namespace)
        return self._parsed, extras

    def error(self, message: str):
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            flags = [
                word.partition("=")[0] for word in message[len(prefix) :].split() if word.startswith("--")
            ]
            close = {flag: match[0] for flag in flags if (match := self._close_flags(flag))}
            if any(flag == match for flag, match in close.items()):
                # A known flag, given before its sub-command (``cache --force prune``): not a misspelling.
                message += self._flag_before_command()
            elif len(close) == 1:
                message += f"; did you mean {next(iter(close.values()))}?"
            elif close:
                message += (
                    f"; did you mean {', '.join(f'{match} for {flag}' for flag, match in close.items())}?"
                )
        elif message.startswith("the following arguments are required"):
            # With no command (`audiotrain --verison`), argparse names it missing before the unknown flag.
            unknown = [
                flag
                for flag in (word.partition("=")[0] for word in getattr(self, "_given", []))
                if flag.startswith("--") and flag not in self._option_string_actions
            ]
            close = [match[0] for flag in unknown[:1] if (match := self._own_close_flags(flag))]
            message += f"; did you mean {close[0]}?" if close else ""
        elif "invalid choice" in message:
            message += self._flag_before_command()
        super().error(message)

    def _flag_before_command(self) -> str:
        """A sub-command's flag given before the sub-command (``cache --root /data info``) made argparse take
        the flag's value for the command: "invalid choice: '/data'", not a word about the flag."""
        given = getattr(self, "_given", [])
        flags = [w.partition("=")[0] for w in given if w.startswith("--")]
        for flag in (f for f in flags if f not in self._option_string_actions):
            for action in self._actions:
                if isinstance(action, argparse._SubParsersAction):
                    takes = [
                        name for name, sub in action.choices.items() if flag in sub._option_string_actions
                    ]
                    if takes:
                        named = next((word for word in given if word in takes), takes[0])  # the one given
                        return (
                            f"; {flag} is a flag of {', '.join(takes)}: give it after the command "
                            f"({self.prog} {named} {flag} ...)"
                        )
        return ""

    def _own_close_flags(self, flag: str) -> list[str]:
        known = [opt for opt in self._option_string_actions if opt[:2] == "--"]
        return difflib.get_close_matches(flag, known, n=1, cutoff=CUTOFF)

    def _close_flags(self, flag: str) -> list[str]:
        # A sub-command's unknown flags are reported by its parent parser (`cache info --roott`): the flags
        # of the sub-command given are known too, not another's (`cache info --force`: prune's).
        parsers = [self]
        parsed = getattr(self, "_parsed", None)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                given = getattr(parsed, action.dest, None) if action.dest != argparse.SUPPRESS else None
                chosen = [action.choices[given]] if given in action.choices else action.choices.values()
                parsers.extend(chosen)
        known = sorted(
            {opt for parser in parsers for opt in parser._option_string_actions if opt[:2] == "--"}
        )
        return difflib.get_close_matches(flag, known, n=1, cutoff=CUTOFF)
