"""`python -m axial.lmeval ARGS`: lm-eval's own CLI (`lm_eval ARGS`) with the `axial` model registered."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from axial.lmeval import register, require

    require()
    register()
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()


if __name__ == "__main__":
    main()
