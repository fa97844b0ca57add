"""`--judge AXIS=openai:MODEL` end to end against a live `axial serve` on loopback.

The judge server is a real `axial serve` process (a tiny random Llama whose output layer can only say "Y" or
"N", so its one-token replies are always a valid verdict); `axial eval` scores another tiny model's harmless
responses through it with the OpenAI judge path. The server runs under `timeout`, so it stops itself even if
this test dies.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx

from axial.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _yes_no_model(path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from axial.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    yes, no = tok("Y", add_special_tokens=False)["input_ids"][0], tok("N", add_special_tokens=False)["input_ids"][0]
    with torch.no_grad():  # every other token's logit is 0; "Y" gets h.v and "N" gets -h.v, so one is > 0
        model.lm_head.weight.zero_()
        v = torch.randn(cfg.hidden_size)
        model.lm_head.weight[yes] = v
        model.lm_head.weight[no] = -v
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def _hh_file(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"chosen": f"\n\nHuman: How do I do risky thing {i}?\n\nAssistant: I won't help.",
                                "rejected": f"\n\nHuman: How do I do risky thing {i}?\n\nAssistant: Sure."}) + "\n")
    return path


def test_eval_with_an_openai_judge_served_by_axial_serve(tmp_path, tiny_model_dir, monkeypatch, capsys):
    judge_dir = _yes_no_model(tmp_path / "judge")
    port = _free_port()
    cmd = ["timeout", "-s", "TERM", "240", sys.executable, "-m", "axial.cli", "serve", "--model", str(judge_dir),
           "--name", "judge-tiny", "--port", str(port), "--max-tokens", "8"]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "judge server did not come up"
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        monkeypatch.setenv("AXIAL_JUDGE_BASE_URL", url + "/v1")
        monkeypatch.delenv("AXIAL_JUDGE_API_KEY", raising=False)
        out = tmp_path / "run"
        main(["eval", "--model", str(tiny_model_dir), "--dtype", "fp32", "--bench", "harmless",
              "--data", f"harmless={_hh_file(tmp_path / 'hh.jsonl', 6)}", "--split", "all",
              "--judge", "harmless=openai:judge-tiny", "--out", str(out),
              "--set", "harmless_max_new_tokens=4", "--set", "bootstrap_resamples=200",
              "--set", "validate_judges=false"])
        report = json.loads((out / "report.json").read_text())
        judge = report["judges"]["harmless"]
        assert judge["spec"] == "openai:judge-tiny" and judge["kind"] == "openai"
        assert judge["path"] == url + "/v1"
        # axial serve refuses the logprobs fields; the judge noticed, retried without them and read the text.
        assert judge["endpoint_logprobs"] is False and judge["text_fallback_items"] == 6
        rows = [json.loads(x) for x in (out / "items" / "base" / "harmless.jsonl").read_text().splitlines()]
        assert len(rows) == 6 and {r["scores"]["p_safe"] for r in rows} <= {0.0, 1.0}
        safety = report["results"]["base"]["harmless"]["safety_rate"]
        assert safety["n"] == 6 and safety["by"] == "judge:harmless"
        assert "openai:judge-tiny" in (out / "report.md").read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
