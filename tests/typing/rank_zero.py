"""A function decorated with `rank_zero_only` keeps its parameters, as under Lightning's: a call with
the wrong arguments is an error, and the result is the function's, or None (on the other ranks)."""

from audiotrain import rank_zero_only

from typing_extensions import assert_type


@rank_zero_only
def save_plot(path: str, dpi: int = 100) -> str:
    return path


assert_type(save_plot("loss.png", dpi=200), str | None)
save_plot(3)  # type: ignore[arg-type]
save_plot("loss.png", dpi="high")  # type: ignore[arg-type]


def _path(path: str) -> str:
    return path


# Lightning's `default`: the other ranks get it, so the result is never None.
assert_type(rank_zero_only(_path, default="")("loss.png"), str)
