"""`axial serve` as a real process: starts, serves the OpenAI client, drains on a real SIGTERM, keeps keys
out of its logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import openai

from axial.testing import save_tiny_llama


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serves_and_drains_on_sigterm(tmp_path, expert_dirs):
    model_dir = save_tiny_llama(tmp_path / "tiny")
    port, key = _free_port(), "sk-cli-secret-4242"
    cmd = [sys.executable, "-m", "axial.cli", "serve", "--model", str(model_dir), "--port", str(port),
           "--max-tokens", "480", "--drain-timeout-s", "120", "--source", "careful=pref:harmless=0.9,honest=0.1"]
    for d in expert_dirs:
        cmd += ["--experts", str(d)]
    # One thread: a tiny model is fastest that way, and the 400-token stream below still lasts ~2 s.
    env = {**os.environ, "AXIAL_API_KEY": key, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "server did not come up"
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        assert {m.id for m in client.models.list().data} == {"tiny", "tiny:careful", "tiny:helpful", "tiny:harmless",
                                                              "tiny:honest", "tiny:balanced", "tiny:safe"}
        stream = client.chat.completions.create(
            model="tiny:careful", messages=[{"role": "user", "content": "hi"}], max_tokens=400, stream=True)
        chunks = iter(stream)
        next(chunks)
        proc.send_signal(signal.SIGTERM)  # mid-generation
        rest = list(chunks)
        assert [c.choices[0].finish_reason for c in rest if c.choices][-1] == "length"
        # uvicorn re-raises the signal after its graceful shutdown, so supervisors see "terminated by SIGTERM".
        assert proc.wait(60) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stdout.read()
    assert key not in log
    assert "Waiting for connections to close" in log  # the stream was still running at SIGTERM
    assert "Finished server process" in log
