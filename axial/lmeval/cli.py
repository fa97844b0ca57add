"""`axial lm-eval ...` (lm-eval's CLI with the `axial` model) and `axial write-truthfulqa-tasks`."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command("lm-eval", add_help_option=False,
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def lm_eval_cmd(ctx: typer.Context) -> None:
        """lm-evaluation-harness's own CLI with the `axial` model registered (every argument goes to lm-eval):
        axial lm-eval --model axial --model_args model=embedded source=base --device cpu --tasks ...
        (`axial lm-eval --help` shows lm-eval's help)."""
        from axial.lmeval.__main__ import main

        main(list(ctx.args))

    @app.command("write-truthfulqa-tasks")
    def write_truthfulqa_tasks_cmd(
        data: str = typer.Option(..., "--data", help="the TruthfulQA CSV (Question, Best Answer, Correct Answers, "
                                                     "Incorrect Answers)"),
        out: str = typer.Option(..., "--out", help="folder to write the tasks into (lm-eval --include_path)"),
        split: str = typer.Option("test", help="test | all: the same hash split as `axial eval`"),
        limit: int | None = typer.Option(None, help="the same deterministic subset as `axial eval --limit`"),
        seed: int = typer.Option(0),
    ) -> None:
        """lm-eval tasks truthfulqa_mc1_csv / truthfulqa_mc2_csv: lm-eval's TruthfulQA task code on answer sets
        from the CSV (where the hub's truthful_qa dataset is out of reach)."""
        from axial.errors import AxialError
        from axial.lmeval import require
        from axial.lmeval.tasks import write_truthfulqa_tasks

        if split not in ("test", "all"):
            raise AxialError(f"--split: '{split}'; expected test or all")
        require()
        info = write_truthfulqa_tasks(data, out, split=split, limit=limit, seed=seed)
        console.print(f"wrote {', '.join(info['tasks'])} ({info['n']} questions) to {info['folder']}; run lm-eval "
                      f"with --include_path {info['folder']} --tasks {' '.join(info['tasks'])}")
