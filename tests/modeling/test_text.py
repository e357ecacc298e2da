"""Prompt word split (docs/protocol.md section 4) and the "_0" target (section 5)."""

import pytest

from modeling.text import (
    labels_to_misaligned_indices,
    misaligned_indices_to_labels,
    parse_tagged,
    split_prompt_words,
    tagged_target,
)


def test_spec_example_has_ten_words() -> None:
    words = split_prompt_words("RichHF-18K: a dataset for rich human feedback on generative images.")
    assert words == [
        "RichHF-18K",
        "a",
        "dataset",
        "for",
        "rich",
        "human",
        "feedback",
        "on",
        "generative",
        "images",
    ]


def test_all_eight_separators_and_empty_pieces() -> None:
    assert split_prompt_words('a,b.c?d!e"f:g;h i') == list("abcdefghi")
    assert split_prompt_words(' ,,  "hello"!! world. ') == ["hello", "world"]
    assert split_prompt_words("") == []


def test_hyphen_apostrophe_tab_are_not_separators() -> None:
    assert split_prompt_words("a dog's well-known\ttrick") == [
        "a",
        "dog's",
        "well-known\ttrick",
    ]


def test_tagged_target_spec_example() -> None:
    assert tagged_target(["a", "yellow", "cat"], [1]) == "a yellow_0 cat"
    assert tagged_target(["a", "cat"], []) == "a cat"
    with pytest.raises(IndexError):
        tagged_target(["a"], [3])


def test_labels_round_trip_and_errors() -> None:
    assert labels_to_misaligned_indices("1 0 1 0") == [1, 3]
    assert misaligned_indices_to_labels(4, [1, 3]) == "1 0 1 0"
    with pytest.raises(ValueError, match="3 labels for 2 words"):
        labels_to_misaligned_indices("1 1 1", n_words=2)
    with pytest.raises(ValueError):
        labels_to_misaligned_indices("1 2")


def test_parse_tagged() -> None:
    assert parse_tagged("a yellow_0 cat.") == [
        ("a", False),
        ("yellow", True),
        ("cat", False),
    ]
    assert parse_tagged("_0") == [("_0", False)]
