"""Running the `rnnkit` command inside a test."""

from rnnkit.cli import main


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of `rnnkit ARGV`, argparse's own rejections included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
