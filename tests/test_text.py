"""The shared pieces of user-facing messages keep the wording the messages had when each wrote its own."""

from audiotrain._text import byte_size, listed


def test_a_long_list_names_a_few_and_counts_the_rest():
    assert listed(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
    assert listed(["a", "b", "c"]) == "a, b, c"
    assert listed([1, 2, 3, 4, 5, 6], shown=5) == "1, 2, 3, 4, 5 and 1 more"
    assert listed([]) == ""


def test_items_that_hold_commas_are_listed_with_another_separator():
    """The messages listing 'x (beside y)' or a reason per song joined them with '; ' by hand."""
    assert listed(["a, x", "b", "c", "d"], sep="; ") == "a, x; b; c and 1 more"


def test_sizes_are_said_in_one_set_of_units():
    """The cache report said KiB/MiB (powers of 1024) and the checkpoint errors kB/MB (powers of 1000): one
    file was "1.5 MiB" in one message and "1.6 MB" in another."""
    assert [byte_size(n) for n in (512, 3006, 1_572_864, 2.5e9, 4e12)] == [
        "512 B", "3.0 kB", "1.6 MB", "2.5 GB", "4000.0 GB",
    ]  # fmt: skip


def test_a_count_of_one_is_singular():
    from audiotrain._text import plural

    assert [plural(n, "clip") for n in (0, 1, 2)] == ["0 clips", "1 clip", "2 clips"]
    assert plural(1, "batch", "batches") == "1 batch" and plural(3, "batch", "batches") == "3 batches"
