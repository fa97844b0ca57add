"""Typed records, readers for the supported dataset formats, deterministic splits and built-in axis sets."""

from axial.data.builtin import builtin_axes_available, builtin_axis_set
from axial.data.kinds import KINDS, parse_hh_dialogue
from axial.data.readers import LoadResult, load_records, write_records
from axial.data.records import LabeledResponseRecord, PreferenceRecord, QARecord, Record, SFTRecord
from axial.data.splits import hash_split, split_key, truthfulqa_split

__all__ = [
    "KINDS",
    "LabeledResponseRecord",
    "LoadResult",
    "PreferenceRecord",
    "QARecord",
    "Record",
    "SFTRecord",
    "builtin_axes_available",
    "builtin_axis_set",
    "hash_split",
    "load_records",
    "parse_hh_dialogue",
    "split_key",
    "truthfulqa_split",
    "write_records",
]
