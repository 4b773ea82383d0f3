"""`rnnkit study`: random-search studies of recurrent cells on Ray, Greff et al. 2015's "LSTM: A
Search Space Odyssey" as a command (`run | report`): trials, resumable results, Welch tests, plots.
Stands on network.SequenceNetwork, train.Trainer, cells.lstm.VARIANTS, data.corpora, data.synthetic.

    spec.py     the study file (TOML): tasks, variants, search space, budget
    tasks.py    the adding problem, the Shakespeare character model, JSB chorales
    trial.py    one trial, a plain function Ray runs on a worker
    results.py  the results directory: study.json and the append-only results.jsonl
    runner.py   Ray orchestration and the progress line
    report.py   tables, box plots, Welch's t-tests, variance shares
    chorales.py the Bach chorales of music21's corpus as piano rolls
    cli.py      the `rnnkit study` subcommand
"""

from .report import write_report
from .results import read_results
from .runner import run_study
from .spec import VARIANTS, StudySpec, Trial, load_study

__all__ = ["StudySpec", "Trial", "VARIANTS", "load_study", "read_results", "run_study", "write_report"]
