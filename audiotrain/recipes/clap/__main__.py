"""``python -m audiotrain.recipes.clap``: see `audiotrain.recipes.clap.cli`."""

from audiotrain.distributed import exit_rank
from audiotrain.recipes.clap.cli import main

# A user error on one rank (status 2) must end a data-parallel job, not leave it waiting in MPI's teardown.
exit_rank(main())
