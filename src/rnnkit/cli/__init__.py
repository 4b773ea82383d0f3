"""The `rnnkit` command: `rnnkit <task> <verb> ...` (also `python -m rnnkit`).

Every failure a user can cause ends in one line on stderr, `rnnkit: error: ...`, and exit code 2
(argparse's own convention for bad arguments); a diverged training run exits with 1; Ctrl-C
during training saves a checkpoint and exits with 130. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys

from ..apps.caption import cli as caption
from ..apps.classify import cli as classify
from ..apps.forecast import cli as forecast
from ..apps.gradients import cli as gradients
from ..apps.lm import cli as lm
from ..apps.seq2seq import cli as seq2seq
from ..apps.study import cli as study
from ..interop import cli as interop
from ..train import TrainingDiverged

__all__ = ["main", "build_parser"]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument gives one line (what is wrong, and where help is) instead of
    the usage block followed by the error."""

    def error(self, message):
        self.exit(2, f"rnnkit: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="rnnkit", description="Recurrent neural networks as the lectures teach them.")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    lm.add_parser(tasks)
    caption.add_parser(tasks)
    seq2seq.add_parser(tasks)
    interop.add_parser(tasks)
    classify.add_parser(tasks)
    forecast.add_parser(tasks)
    study.add_parser(tasks)
    gradients.add_parser(tasks)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (FileExistsError, NotADirectoryError) as error:  # a folder to write into is a file
        print(f"rnnkit: error: {error.filename} is a file, not a folder; give another path (e.g. another --out)",
              file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        print(f"rnnkit: error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"rnnkit: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nrnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnnkit lm sample ... | head`
        return 0
