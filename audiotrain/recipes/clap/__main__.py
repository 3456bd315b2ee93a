"""``python -m audiotrain.recipes.clap``: see `audiotrain.recipes.clap.cli`."""

from audiotrain._system import run_recipe_command

# Only when run: importing this module (pydoc, sphinx's autodoc, pkgutil.walk_packages) must not start a run.
if __name__ == "__main__":
    run_recipe_command("audiotrain.recipes.clap.cli")
