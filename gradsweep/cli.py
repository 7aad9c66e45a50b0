"""The command line: ``gradsweep COMMAND ...`` (the same as ``python -m gradsweep``).

One parser names every subcommand. ``run`` is the default: ``gradsweep +sweep=smoke``
is ``gradsweep run +sweep=smoke``, whose arguments are Hydra's. Every expected failure
(bad config, data, store) is one line naming the key or file, and exit code 2 (1 when a
store or the workers went away), before TensorFlow loads wherever the input allows.
Nothing imports this module.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from typing import Dict, List, Optional

from gradsweep import logs

logs.quiet_environment()  # before TensorFlow or MLflow are imported anywhere

log = logging.getLogger("gradsweep")
# ./conf of the working directory is optional; Hydra warns when it is absent.
warnings.filterwarnings("ignore", message=r"provider=hydra\.searchpath in main, path=conf is not available")

NOT_A_RUN = ("report", "compare", "predict", "rerun", "figure")  # the subcommands whose words are not Hydra's
EPILOG = """\
run takes Hydra overrides (key=value, +sweep=NAME, +experiment=NAME, group=option):
  gradsweep run --help        the config groups and their options (Hydra's help)
  gradsweep run --cfg job     the composed config: every key and its value
  gradsweep +sweep=smoke      'run' may be left out
"""


def _run(args: argparse.Namespace) -> int:
    from gradsweep.commands.run import main as run_main

    return run_main(args.overrides)


def _report(args: argparse.Namespace) -> int:
    from gradsweep.commands.report import report

    settings = _settings(args)
    report(args.name, storage=settings.get("sweep.storage"), tracking_uri=settings.get("tracking.uri"))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from gradsweep.commands.report import compare

    compare(args.names, storage=_settings(args).get("sweep.storage"))
    return 0


def _rerun(args: argparse.Namespace) -> int:
    from gradsweep.commands.rerun import rerun

    return 0 if rerun(args.run_id, args.tracking_uri, args.experiment) else 1


def _figure(args: argparse.Namespace) -> int:
    from gradsweep.commands.figure import figure

    print(figure(args.run_id, args.tracking_uri))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from gradsweep.commands.predict import predict

    print(predict(args.name, args.config, storage=args.storage, csv=args.csv, out=args.out))
    return 0


def _settings(args: argparse.Namespace) -> Dict[str, str]:
    """``--storage`` and ``--tracking-uri``, or the same as ``key=value`` words."""
    out = {
        k: v for k, v in (("sweep.storage", args.storage), ("tracking.uri", getattr(args, "tracking_uri", None))) if v
    }
    for word in args.settings:
        key, _, value = word.partition("=")
        out[key] = value
    return out


def _store_settings(parser: argparse.ArgumentParser, tracking: bool) -> None:
    parser.add_argument("--storage", metavar="URL", help="the Optuna storage (default: the sweep's journal file)")
    if tracking:
        parser.add_argument("--tracking-uri", metavar="URI", help="the MLflow store (default: the local one)")


def parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    top = argparse.ArgumentParser(
        prog="gradsweep",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
        description="Map where deep networks' gradients vanish or explode across a hyperparameter space.",
    )
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run", help="run a sweep (+sweep=NAME) or one configured model (the default command)", add_help=False
    )
    run.add_argument("overrides", nargs=argparse.REMAINDER, help="Hydra overrides and flags")
    run.set_defaults(handler=_run)
    report = sub.add_parser("report", help="rebuild a sweep's report from its study and log it to MLflow")
    report.add_argument("name", help="the sweep's name (sweep.name)")
    _store_settings(report, tracking=True)
    report.set_defaults(handler=_report)
    compare = sub.add_parser("compare", help="two sweeps' reports side by side in one page")
    compare.add_argument("names", nargs=2, metavar="NAME", help="two sweep names")
    _store_settings(compare, tracking=False)
    compare.set_defaults(handler=_compare)
    predict = sub.add_parser(
        "predict",
        help="the regime a config would be in, from a sweep's trials (no training)",
        description="Predicts a config's regime from the regime classifier of sweep NAME's finished trials; "
        "keys left out are averaged over the measured trials' values.",
    )
    predict.add_argument("name", help="the sweep's name (sweep.name)")
    predict.add_argument("config", nargs="*", metavar="key=value", help="swept keys, e.g. model.init_std=0.5")
    predict.add_argument("--csv", metavar="FILE", help="configs to predict, one per row (columns: swept keys)")
    predict.add_argument("--out", metavar="FILE", help="where --csv's predictions go")
    _store_settings(predict, tracking=False)
    predict.set_defaults(handler=_predict)
    rerun = sub.add_parser("rerun", help="train a recorded run or trial again and compare the two")
    rerun.add_argument("run_id", help="MLflow run id of a trial or single run")
    rerun.add_argument("--tracking-uri", default=None, metavar="URI", help="the MLflow store (default: the local one)")
    rerun.add_argument("--experiment", default=None, help="experiment of the new run (default: gradsweep)")
    rerun.set_defaults(handler=_rerun, settings=[], storage=None)
    figure = sub.add_parser(
        "figure", help="draw a run's gradient-flow figure from its records (one made with tracking.figures=false)"
    )
    figure.add_argument("run_id", help="MLflow run id of a trial or single run")
    figure.add_argument("--tracking-uri", default=None, metavar="URI", help="the MLflow store (default: the local one)")
    figure.set_defaults(handler=_figure, settings=[], storage=None)
    return top


def _split_settings(command: str, argv: List[str]) -> tuple[List[str], List[str]]:
    """``sweep.storage=URL`` and ``tracking.uri=URI`` words of report and compare, kept
    apart from the names (the form Hydra users type).

    Raises:
        ConfigError: another key is set.
    """
    from gradsweep.errors import ConfigError

    names, settings = [], []
    for word in argv:
        if "=" in word and not word.startswith("-"):
            key = word.split("=", 1)[0]
            allowed = ("sweep.storage", "tracking.uri") if command == "report" else ("sweep.storage",)
            if key not in allowed:
                raise ConfigError(f"{key}: gradsweep {command} takes only {' and '.join(allowed)}")
            settings.append(word)
        else:
            names.append(word)
    return names, settings


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of ``gradsweep`` and ``python -m gradsweep``."""
    from gradsweep import stopping
    from gradsweep.errors import GradsweepError

    argv = list(sys.argv[1:] if argv is None else argv)
    top = parser()
    commands = {"run", *NOT_A_RUN}
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]  # Hydra's words, flags included
    stopping.install()  # SIGTERM and Ctrl-C: runs end KILLED, the trial FAIL
    logs.setup(fmt="%(message)s" if argv[0] in NOT_A_RUN else logs.FORMAT)
    try:
        if argv[0] in ("report", "compare"):
            names, settings = _split_settings(argv[0], argv[1:])
            args = top.parse_args([argv[0], *names])
            args.settings = settings
        elif argv[0] == "run":
            args = argparse.Namespace(handler=_run, overrides=argv[1:])
        else:
            args = top.parse_args(argv)
        sys.exit(args.handler(args))
    except GradsweepError as err:
        log.error("%s", err)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        log.error("interrupted: the running trial was marked failed and its MLflow run KILLED")
        sys.exit(130)
