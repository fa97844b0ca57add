"""The prompt pools MORA works on: a training pool and a disjoint held-out pool per axis."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from axial.data.records import Message
from axial.data.splits import normalise_text
from axial.errors import AxialError


@dataclass
class Prompt:
    """One prompt: chat messages ending with a user turn, the axis its source was drawn for, and a stable id."""

    id: str
    axis: str
    messages: list[Message]
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.messages[-1]["content"]

    def to_dict(self) -> dict:
        return asdict(self)


def _messages(record, first_turn_only: bool) -> list[Message]:
    msgs = [dict(m) for m in record.messages]
    if first_turn_only:
        # A multi-turn HH-RLHF dialogue becomes its opening request: sampling k rollouts of a long dialogue
        # costs k times its length, and the opening request is what carries (or lacks) the axis intent.
        first = next((m for m in msgs if m["role"] == "user"), None)
        return [first] if first else []
    return msgs


def load_prompt_pools(config) -> tuple[list[Prompt], list[Prompt]]:
    """(train, heldout) prompts from `config.prompts` ("AXIS=SOURCE" items).

    Per source, records are ordered by a seeded hash of their normalised text (so the choice does not depend on
    file order), duplicates dropped, then the first n_train_per_axis go to training and the next
    n_heldout_per_axis to the held-out pool. A prompt text is in at most one pool across all sources.
    """
    from axial.data import load_records
    from axial.stats import hash_order

    if not config.prompts:
        raise AxialError("MoraConfig.prompts: no prompt sources (give AXIS=SOURCE items)")
    names = config.axis_names()
    train: list[Prompt] = []
    heldout: list[Prompt] = []
    seen: set[str] = set()
    for item in config.prompts:
        axis, _, source = item.partition("=")
        axis, source = axis.strip(), source.strip()
        if axis not in names:
            raise AxialError(f"MoraConfig.prompts: '{item}': unknown axis '{axis}'; axes are {names}")
        if source.startswith("builtin:"):
            from axial.data import builtin_axis_set

            records = list(builtin_axis_set(source.partition(":")[2], kind="sft"))
        else:
            records = load_records(source, split=config.split).records
        candidates = []
        for i, record in enumerate(records):
            msgs = _messages(record, config.first_turn_only)
            if not msgs or msgs[-1]["role"] != "user" or not msgs[-1]["content"].strip():
                raise AxialError(f"{source}: record #{i} (id={getattr(record, 'id', '')!r}) has no user turn "
                                 "to use as a prompt")
            candidates.append((record, msgs))
        keys = [normalise_text(msgs[-1]["content"]) for _, msgs in candidates]
        wanted = config.n_train_per_axis + config.n_heldout_per_axis
        chosen = []
        for i in hash_order(keys, config.seed):
            if keys[i] in seen:
                continue
            seen.add(keys[i])
            chosen.append(i)
            if len(chosen) == wanted:
                break
        if len(chosen) < wanted:
            raise AxialError(f"MoraConfig.prompts: '{item}' has {len(chosen)} distinct prompts in split "
                             f"'{config.split}', fewer than n_train_per_axis + n_heldout_per_axis = {wanted}")
        for rank, i in enumerate(chosen):
            record, msgs = candidates[i]
            rid = getattr(record, "id", "") or f"{i}"
            prompt = Prompt(id=f"{axis}:{rid}", axis=axis, messages=msgs, source=source)
            (train if rank < config.n_train_per_axis else heldout).append(prompt)
    ids = [p.id for p in train + heldout]
    if len(set(ids)) != len(ids):
        raise AxialError("MoraConfig.prompts: two sources for the same axis give the same record ids; "
                         "list each source once")
    return train, heldout
