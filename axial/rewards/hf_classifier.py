"""Any HF sequence-classification model as a judge: reward models (one logit) and safety/truth classifiers.

`hf-cls:ID_OR_PATH#LABEL`: with several classes, score() = softmax probability of LABEL (an index or a name
from the model's id2label), e.g. P(safe); without LABEL a two-class model uses class 1. A one-logit model is a
reward model: score() is the raw logit and compare() the BT probability sigmoid(r_a - r_b).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from axial.errors import AxialError
from axial.rewards.base import Judge, _check_lengths
from axial.rewards.generative import conversation_text


class HFClassifierJudge(Judge):
    kind = "hf-cls"

    def __init__(self, model: str, *, label: str | None = None, axis: str | None = None, dtype: str = "auto",
                 batch_size: int = 8, max_length: int = 512, trust_remote_code: bool = False):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from axial.models import resolve_device, resolve_dtype, resolve_model_path

        self.axis, self.batch_size, self.max_length = axis, batch_size, max_length
        self.path = resolve_model_path(model)
        device = resolve_device("auto")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=trust_remote_code)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                self.path, dtype=resolve_dtype(dtype, device), use_safetensors=True,
                trust_remote_code=trust_remote_code).to(device).eval()
        except (OSError, ValueError) as e:
            raise AxialError(f"judge spec 'hf-cls:{model}': cannot load a sequence classifier: {e}") from e
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.model.config.pad_token_id is None:
            # Decoder classifiers find each row's last token through pad_token_id; without it batching fails.
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.num_labels = int(self.model.config.num_labels)
        self.label = self._label_index(label, model)
        suffix = "" if self.label is None else f"#{self.model.config.id2label.get(self.label, self.label)}"
        self.name = f"hf-cls:{model}{suffix}"

    def _label_index(self, label: str | None, model: str) -> int | None:
        if self.num_labels == 1:
            if label is not None:
                raise AxialError(f"judge spec 'hf-cls:{model}#{label}': the model has one output (a reward "
                                 f"model), so there is no class to pick; drop '#{label}'")
            return None
        if label is None:
            if self.num_labels != 2:
                raise AxialError(f"judge spec 'hf-cls:{model}': {self.num_labels} classes; name the good one "
                                 f"with #LABEL (one of {dict(self.model.config.id2label)})")
            return 1
        if label.isdigit():
            idx = int(label)
            if not 0 <= idx < self.num_labels:
                raise AxialError(f"judge spec 'hf-cls:{model}#{label}': index out of range 0..{self.num_labels - 1}")
            return idx
        names = {str(v).lower(): int(k) for k, v in self.model.config.id2label.items()}
        if label.lower() not in names:
            raise AxialError(f"judge spec 'hf-cls:{model}#{label}': no such label; the model has "
                             f"{dict(self.model.config.id2label)}")
        return names[label.lower()]

    def _texts(self, prompts, responses) -> list[str]:
        tok = self.tokenizer
        out = []
        for p, r in zip(prompts, responses, strict=True):
            if tok.chat_template:
                out.append(tok.apply_chat_template(list(p) + [{"role": "assistant", "content": r}],
                                                   tokenize=False))
            else:
                out.append(f"{conversation_text(p)}\n\n{r}")
        return out

    def logits(self, prompts: Sequence, responses: Sequence[str]):
        import torch

        _check_lengths(prompts, responses)
        texts = self._texts(prompts, responses)
        rows = []
        # Left truncation keeps the response, which is what is judged.
        self.tokenizer.truncation_side = "left"
        for start in tqdm(range(0, len(texts), self.batch_size), desc="classify", leave=False,
                          disable=len(texts) < 4 * self.batch_size):
            batch = self.tokenizer(texts[start:start + self.batch_size], return_tensors="pt", padding=True,
                                   truncation=True, max_length=self.max_length).to(self.model.device)
            with torch.no_grad():
                rows.append(self.model(**batch).logits.float().cpu())
        return torch.cat(rows) if rows else torch.zeros(0, self.num_labels)

    def score(self, prompts, responses) -> list[float]:
        import torch

        logits = self.logits(prompts, responses)
        if self.label is None:
            return logits[:, 0].tolist()
        return torch.softmax(logits, dim=-1)[:, self.label].tolist()

    def compare(self, prompts, responses_a, responses_b) -> list[float]:
        import torch

        _check_lengths(prompts, responses_a, responses_b)
        la, lb = self.logits(prompts, responses_a), self.logits(prompts, responses_b)
        if self.label is None:
            return torch.sigmoid(la[:, 0] - lb[:, 0]).tolist()
        # Log-odds of the good class, so a classifier's compare is a BT comparison of its two verdicts.
        def log_odds(lg):
            lp = torch.log_softmax(lg, dim=-1)
            other = torch.logsumexp(torch.cat([lp[:, :self.label], lp[:, self.label + 1:]], dim=1), dim=1)
            return lp[:, self.label] - other

        return torch.sigmoid(log_odds(la) - log_odds(lb)).tolist()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(num_labels=self.num_labels, label=self.label)
        return d
