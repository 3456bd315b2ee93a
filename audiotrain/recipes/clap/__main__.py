"""``python -m audiotrain.recipes.clap``: see `audiotrain.recipes.clap.cli`."""

from audiotrain.recipes.clap.cli import main

raise SystemExit(main())
