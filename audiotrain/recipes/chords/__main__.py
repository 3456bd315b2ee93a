"""``python -m audiotrain.recipes.chords``: see `audiotrain.recipes.chords.cli`."""

from audiotrain.recipes.chords.cli import main

raise SystemExit(main())
