"""Deterministic train/test splits by a hash of the prompt text, so no later step trains on what it evaluates.

The rule (stable across machines, Python versions, file order and record counts):

    key   = the question (QA records) or the first user message (every other record)
    norm  = NFKC-normalise key, lower-case it, collapse runs of whitespace to one space, strip
    h     = sha256(salt + "\\n" + norm) if salt else sha256(norm)       (UTF-8 bytes)
    u     = first 8 bytes of h as a big-endian integer / 2**64          (uniform in [0, 1))
    split = "test" if u < test_fraction else "train"

With the default test_fraction 0.5 and no salt, a TruthfulQA question is in the test half exactly when the
first bit of sha256(normalised question) is 0. Because the key is the text, the same prompt lands on the same
side in every file that contains it (e.g. the AlpacaEval reference outputs and the judge annotations), and
near-duplicates differing only in case or spacing cannot straddle the split.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from axial.errors import AxialError

SPLITS = ("train", "test", "all")
_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def hash_split(text: str, test_fraction: float = 0.5, salt: str = "") -> str:
    """'train' or 'test' for this text (see the module docstring for the exact rule)."""
    if not 0.0 <= test_fraction <= 1.0:
        raise AxialError(f"test_fraction must be in [0, 1], got {test_fraction}")
    norm = normalise_text(text)
    payload = f"{salt}\n{norm}" if salt else norm
    u = int.from_bytes(hashlib.sha256(payload.encode("utf-8")).digest()[:8], "big") / 2**64
    return "test" if u < test_fraction else "train"


def truthfulqa_split(question: str) -> str:
    """The TruthfulQA half a question belongs to: hash_split(question) with the defaults (half/half, no salt)."""
    return hash_split(question)


def split_key(record) -> str:
    """The text a record is split by: its question, else its first user message."""
    question = getattr(record, "question", None)
    if question is not None:
        return question
    for message in record.messages:
        if message["role"] == "user":
            return message["content"]
    raise AxialError(f"record {record.id!r} has no user message to split by")


def check_split(split: str | None) -> str:
    split = split or "all"
    if split not in SPLITS:
        raise AxialError(f"split '{split}': expected one of {', '.join(SPLITS)}")
    return split


def record_split(record, test_fraction: float = 0.5, salt: str = "") -> str:
    return hash_split(split_key(record), test_fraction, salt)
