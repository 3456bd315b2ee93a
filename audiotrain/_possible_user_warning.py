"""`PossibleUserWarning`: the category of advice a fit gives that may be meant (a short epoch under a long
logging interval), so that code run with warnings as errors can ignore it by category alone
(``filterwarnings = ignore::audiotrain.PossibleUserWarning``), as Lightning's
``lightning.pytorch.utilities.warnings.PossibleUserWarning`` for the same warning."""


class PossibleUserWarning(UserWarning):
    """A setting that may be a mistake and may be meant: the run goes on as asked."""
