"""``python -m audiotrain.recipes.chords``: see `audiotrain.recipes.chords.cli`."""

from audiotrain.distributed import exit_rank
from audiotrain.recipes.chords.cli import main

# A user error on one rank (status 2) must end a data-parallel job, not leave it waiting in MPI's teardown.
exit_rank(main())
