"""`python -m axial.lmeval ARGS`: lm-eval's own CLI (`lm_eval ARGS`) with the `axial` model registered."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from lm_eval.__main__ import cli_evaluate

    import axial.lmeval  # noqa: F401  (registers the model)

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()


if __name__ == "__main__":
    main()
