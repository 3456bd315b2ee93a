"""``python -m audiotrain.recipes.chords``: see `audiotrain.recipes.chords.cli`."""

from audiotrain._system import (
    escape_what_stdout_cannot_encode,
    exit_unless_mlx_loads,
    show_warnings_on_one_line,
)

# Only when run: importing this module (pydoc, sphinx's autodoc, pkgutil.walk_packages) must not start a run.
if __name__ == "__main__":
    exit_unless_mlx_loads()  # before the imports below load mlx.core: one line naming the extra to install
    escape_what_stdout_cannot_encode()
    show_warnings_on_one_line()
    from audiotrain.distributed import exit_rank
    from audiotrain.recipes.chords.cli import main

    # A user error on one rank (status 2) must end a data-parallel job, not leave it waiting in MPI's teardown.
    exit_rank(main())
