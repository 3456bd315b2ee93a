"""``python -m audiotrain.recipes.clap``: see `audiotrain.recipes.clap.cli`."""

from audiotrain._system import run_recipe_command

#: The module whose ``main()`` is the command (also for ``audiotrain clap ...``: `audiotrain.__main__`).
CLI = "audiotrain.recipes.clap.cli"

# Only when run: importing this module (pydoc, sphinx's autodoc, pkgutil.walk_packages) must not start a run.
if __name__ == "__main__":
    run_recipe_command(CLI)
