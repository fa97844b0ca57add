"""`axial mora sample|isolate|rewrite|align|report|run CONFIG [key=value ...]`: the chain step by step or whole."""

from __future__ import annotations

import typer

from axial.errors import AxialError

CONFIG_HELP = "a MoraConfig JSON file, or an experiment folder holding mora_config.json"
OVERRIDES_HELP = "key=value overrides of MoraConfig"


def _config(config: str, overrides: list[str] | None):
    from axial.mora.config import load_config

    return load_config(config, overrides)


def register(app: typer.Typer) -> None:
    mora = typer.Typer(no_args_is_help=True, help="MORA: sample, isolate single-reward prompts, rewrite, align.")
    app.add_typer(mora, name="mora")

    @mora.command("sample")
    def sample_cmd(config: str = typer.Argument(..., help=CONFIG_HELP),
                   overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP)):
        """k scored rollouts per training prompt (append-only; a rerun continues where it stopped)."""
        from axial.mora.pipeline import step_sample

        step_sample(_config(config, overrides))

    @mora.command("isolate")
    def isolate_cmd(config: str = typer.Argument(..., help=CONFIG_HELP),
                    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP)):
        """Reward envelope per prompt; single-reward / multi-reward / neither counts and a PNG."""
        from axial.mora.pipeline import step_isolate

        step_isolate(_config(config, overrides))

    @mora.command("rewrite")
    def rewrite_cmd(config: str = typer.Argument(..., help=CONFIG_HELP),
                    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP)):
        """Rewrite single-reward prompts; keep those that keep intent and raise the envelope."""
        from axial.mora.pipeline import step_rewrite

        step_rewrite(_config(config, overrides))

    @mora.command("align")
    def align_cmd(config: str = typer.Argument(..., help=CONFIG_HELP),
                  overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
                  mode: str = typer.Option(None, help="sequential | simultaneous (default: the config's)"),
                  arm: str = typer.Option("rewritten", help="rewritten (MORA) | original (the no-rewrite ablation)")):
        """Train a PEFT adapter on the best rollouts (SFT) or best-vs-worst pairs (DPO)."""
        from axial.mora.config import ARMS
        from axial.mora.pipeline import step_align

        if arm not in ARMS:
            raise AxialError(f"--arm: must be one of {list(ARMS)}, got '{arm}'")
        cfg = _config(config, overrides)
        step_align(cfg.replace(mode=mode) if mode else cfg, arm)

    @mora.command("report")
    def report_cmd(config: str = typer.Argument(..., help=CONFIG_HELP),
                   overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP)):
        """Held-out per-axis reward: base vs MORA vs no-rewrite ablation, paired bootstrap CIs (JSON, MD, PNG)."""
        from axial.mora.pipeline import step_report

        step_report(_config(config, overrides))

    @mora.command("run")
    def run_cmd(config: str = typer.Argument(..., help=CONFIG_HELP),
                overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP)):
        """The whole chain: sample, isolate, rewrite, align (both arms), report."""
        from axial.mora.pipeline import run

        run(_config(config, overrides))
