"""Multi-process training: launch checks, per-rank bookkeeping, shipped accelerate configs, a DDP step helper.

Expert training runs through the HF Trainer, so any launcher that sets up torch.distributed gives data-parallel
training with nothing axial-specific:

    torchrun --nproc_per_node 2 -m axial.cli train-expert ...                    # CPU (gloo) or GPUs (nccl)
    accelerate launch --config_file "$(axial accelerate-config multi_gpu)" -m axial.cli train-expert ...

`accelerate launch --cpu --num_processes N` is the trap: accelerate's multi-CPU mode needs MPI (mpirun and
--mpirun_hostfile); without it, accelerate starts ONE process and says nothing. `check_launch()` (called by
every axial training entry point) detects that and refuses with the commands that work.

Shipped accelerate configs (`accelerate_config(name)` / `axial accelerate-config NAME`): cpu_ddp (N CPU
processes over gloo, no MPI), multi_gpu (DDP), fsdp (FSDP v2, blocks wrapped by the model's own
`_no_split_modules`, so no architecture is named), deepspeed_zero2, deepspeed_zero3. Override the process
count with `accelerate launch --num_processes N`.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from axial.errors import AxialError

CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "accelerate"


def accelerate_configs() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def accelerate_config(name: str) -> Path:
    """The path of a shipped accelerate config (for `accelerate launch --config_file`)."""
    configs = accelerate_configs()
    if name not in configs:
        raise AxialError(f"accelerate config '{name}': shipped configs are {sorted(configs)}")
    return configs[name]


def world() -> tuple[int, int]:
    """(rank, world_size) of this process (0, 1 when not launched for several processes)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def gather(value) -> list:
    """`value` from every rank, in rank order (just [value] in a single process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


# ---- the silent single process of `accelerate launch --cpu --num_processes N` -------------------------------
def _parent_cmdline() -> list[str]:
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:  # not Linux, or no permission: nothing to check against
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def requested_processes(argv: list[str]) -> int | None:
    """How many processes an `accelerate launch` command line asked for (flag or --config_file), if any."""
    if "launch" not in argv:
        return None
    launch = argv[argv.index("launch") + 1:]
    value = _option(launch, "--num_processes", "--num-processes")
    if value is None:
        config = _option(launch, "--config_file", "--config-file")
        if config and Path(config).is_file():
            import yaml

            try:
                value = (yaml.safe_load(Path(config).read_text()) or {}).get("num_processes")
            except yaml.YAMLError:
                value = None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def check_launch(parent_argv: list[str] | None = None) -> None:
    """Refuse to train in one process when the launcher was asked for several but started only one."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("true", "1", "yes"):
        return
    argv = _parent_cmdline() if parent_argv is None else parent_argv
    if not any(Path(a).name == "accelerate" or a.endswith("accelerate_cli.py") for a in argv[:3]):
        return
    if _option(argv, "--mpirun_hostfile") is not None:  # accelerate's MPI launch: a real multi-CPU run
        return
    n = requested_processes(argv)
    if n is None or n <= 1:
        return
    raise AxialError(
        f"`{shlex.join(argv[:6])} ...` asked for {n} processes but started one: accelerate's --cpu multi-process "
        f"mode needs MPI (mpirun and --mpirun_hostfile). For {n} CPU processes over gloo use "
        f"`torchrun --nproc_per_node {n} -m axial.cli ...` or `accelerate launch --config_file "
        f"$(axial accelerate-config cpu_ddp) --num_processes {n} -m axial.cli ...`")


def init_distributed() -> tuple[int, int]:
    """Join the process group that torchrun / accelerate launch describe in the environment (gloo on CPU,
    nccl on GPUs) and return (rank, world_size); (0, 1) for a plain single process."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return world()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def merge_strided(parts: list[dict], n: int) -> dict:
    """Reassemble per-rank results of a strided shard (rank r held items r, r+W, ...) in the original order.

    Each part maps names to tensors whose first dimension runs over that rank's items.
    """
    import torch

    if len(parts) == 1:
        return parts[0]
    out = {}
    for key in parts[0]:
        first = parts[0][key]
        full = torch.empty((n, *first.shape[1:]), dtype=first.dtype)
        for r, part in enumerate(parts):
            full[r::len(parts)] = part[key]
        out[key] = full
    return out


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum of a few floats over all ranks."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


class GradientSync:
    """The data-parallel step for hand-written training loops (routers), where torch's DDP does not fit
    (the loop calls module methods other than forward, and losses are weighted by shares of a global batch).

    Every rank starts from rank 0's parameters; each rank backpropagates its share of a global batch with the
    loss scaled by that share (rows or tokens of the batch, `local / total`); `step_ready()` then sums the
    gradients over ranks, so the optimizer step is the one a single process takes on the whole batch.
    """

    def __init__(self, params):
        import torch.distributed as dist

        self.params = [p for p in params if p.requires_grad]
        self.active = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if self.active:
            for p in self.params:
                dist.broadcast(p.data, src=0)

    def step_ready(self) -> None:
        import torch
        import torch.distributed as dist

        if not self.active:
            return
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)


class RowCounter:
    """Wraps a data collator and counts the rows this process collated: proof that a rank took part."""

    def __init__(self, collate):
        self.collate, self.rows, self.batches = collate, 0, 0

    def __call__(self, features):
        self.rows += len(features)
        self.batches += 1
        return self.collate(features)


def register(app) -> None:
    import typer

    @app.command("accelerate-config")
    def accelerate_config_cmd(name: str = typer.Argument(..., help="cpu_ddp | multi_gpu | fsdp | deepspeed_zero2 | "
                                                                  "deepspeed_zero3")):
        """Print the path of a shipped accelerate config (for `accelerate launch --config_file`)."""
        typer.echo(str(accelerate_config(name)))
