"""Prompt words and the keyword target sequence (docs/protocol.md sections 4 and 5).

The release's ``prompt_misalignment_label`` holds one label per prompt *word*, where words
come from one specific split. Every producer (the web app's export) and consumer (the model's
target, the keyword metric) must use this one function, or labels silently shift by a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# The alternation of the eight separator characters, each escaped, as in the release's
# helper script. Hyphens, apostrophes, tabs and newlines are NOT separators.
_WORD_SPLIT = re.compile(r"\,|\.|\?|\!|\"|\:|\;|\ ")

#: Suffix marking a misaligned word in the model's text target.
MISALIGNED_SUFFIX = "_0"


def split_prompt_words(prompt: str) -> list[str]:
    """Split a prompt into the words that keyword labels refer to (docs/protocol.md section 4).

    Empty pieces (from runs of separators) are dropped, so the number of words equals the
    number of labels in the release.
    """
    return [piece for piece in _WORD_SPLIT.split(prompt) if piece]


def tagged_target(words: Sequence[str], misaligned_indices: Iterable[int]) -> str:
    """Join the words by single spaces, suffixing each misaligned word with ``_0``.

    ``tagged_target(["a", "yellow", "cat"], [1]) == "a yellow_0 cat"`` (docs/protocol.md section 5).
    Raises ``IndexError`` for an index outside the words, because a label that points past
    the prompt means the label and the prompt do not belong together.
    """
    bad = set(misaligned_indices)
    for index in bad:
        if not 0 <= index < len(words):
            raise IndexError(f"misaligned index {index} outside {len(words)} words")
    return " ".join(word + MISALIGNED_SUFFIX if i in bad else word for i, word in enumerate(words))


def labels_to_misaligned_indices(label: str, n_words: int | None = None) -> list[int]:
    """Parse a release label string ("1 0 1": 0 = misaligned) into misaligned word indices.

    When ``n_words`` is given, a count mismatch raises ``ValueError`` (docs/protocol.md section 4: the
    number of labels must equal the number of words).
    """
    tokens = label.split()
    if n_words is not None and len(tokens) != n_words:
        raise ValueError(f"{len(tokens)} labels for {n_words} words")
    out: list[int] = []
    for i, token in enumerate(tokens):
        if token not in ("0", "1"):
            raise ValueError(f"label {i} is {token!r}, expected '0' or '1'")
        if token == "0":
            out.append(i)
    return out


def misaligned_indices_to_labels(n_words: int, misaligned_indices: Iterable[int]) -> str:
    """Inverse of :func:`labels_to_misaligned_indices`: the release label string."""
    bad = set(misaligned_indices)
    return " ".join("0" if i in bad else "1" for i in range(n_words))


def parse_tagged(sequence: str) -> list[tuple[str, bool]]:
    """Split a generated/target sequence into (stem, is_misaligned) pairs, one per word.

    The sequence is split with the same word split as the labels, so punctuation the decoder
    may emit does not create extra words.
    """
    out: list[tuple[str, bool]] = []
    for word in split_prompt_words(sequence):
        if word.endswith(MISALIGNED_SUFFIX) and len(word) > len(MISALIGNED_SUFFIX):
            out.append((word[: -len(MISALIGNED_SUFFIX)], True))
        else:
            out.append((word, False))
    return out
