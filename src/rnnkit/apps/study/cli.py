"""`rnnkit study run | report`: random-search studies of the LSTM variants (Greff et al. 2015) on
Ray; see `rnnkit.apps.study`."""

from __future__ import annotations

import sys
from pathlib import Path

from rnnkit.argtypes import positive_int

DEFAULT_OUT = "runs/study"


def add_parser(tasks) -> None:
    study = tasks.add_parser("study", help="random-search studies of LSTM variants, run on Ray",
                             description="Greff et al.'s 'LSTM: A Search Space Odyssey' as a command: every "
                                         "variant on every task with random hyperparameters, on Ray.")
    verbs = study.add_subparsers(dest="verb", metavar="VERB", required=True)
    run = verbs.add_parser("run", help="run (or resume) a study",
                           description="Run every trial of STUDY not yet recorded in the results directory; "
                                       "each finished trial is appended to results.jsonl at once, so a killed "
                                       "study resumes where it stopped.")
    run.add_argument("study", help="the study file (TOML; see the README's study section)")
    run.add_argument("--out", help=f"results directory (default: {DEFAULT_OUT}/NAME, NAME from the study file)")
    run.add_argument("--address", help="an existing Ray cluster: 'auto' or ray://HOST:PORT "
                                       "(default: start a local Ray on this machine's cores)")
    run.add_argument("--cpus", type=positive_int, help="CPUs of the local Ray (default: all cores)")
    run.add_argument("--retry-failed", action="store_true", help="run the trials recorded as failed again")
    run.set_defaults(run=run_study_command)
    report = verbs.add_parser("report", help="tables and plots of a study's results",
                              description="Per task: each variant's best and median score, Welch's t-test of "
                                          "its top 10 %% against vanilla, box plots, and the variance "
                                          "explained by each hyperparameter.")
    report.add_argument("results", help="a results directory written by `rnnkit study run`")
    report.add_argument("--out", help="where report.md and the plots go (default: the results directory)")
    report.set_defaults(run=run_report)


def run_study_command(args) -> int:
    from . import load_study, run_study

    spec = load_study(args.study)
    out = Path(args.out) if args.out else Path(DEFAULT_OUT) / spec.name
    results = run_study(spec, out, address=args.address, cpus=args.cpus, retry_failed=args.retry_failed)
    failed = sum(r["status"] == "failed" for r in results.records)
    print(f"results: {results.path}" + (f" ({failed} failed trial(s); see their error there)" if failed else ""))
    print(f"report:  rnnkit study report {results.directory}")
    return 0


def run_report(args) -> int:
    from . import write_report

    text, files = write_report(args.results, args.out)
    sys.stdout.write(text)
    print("wrote " + ", ".join(str(f) for f in files))
    return 0
