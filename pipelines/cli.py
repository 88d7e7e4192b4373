"""The `zml` command: thin subcommands over the pipelines and the library."""

from __future__ import annotations

import os
import sys

USAGE = """usage: zml COMMAND [options]

commands:
  build         build the dataset (the same as python -m pipelines.build_dataset)
  harvest       list Zenodo records into a JSON-lines file (python -m pipelines.harvest_records)
  report        write an HTML page with plots of a built dataset's shape (./NAME-report/index.html)
  ls            list a dataset's records, or one record's files
  show          print one image of a built dataset back as text
  export-png    write a dataset's images as readable grayscale PNGs, one folder per extension
  train         train and evaluate a baseline CNN classifier (python -m pipelines.train_classifier)
  setup-runner  put Beam's Flink or Spark job-server jar into Beam's jar cache (zml setup-runner flink|spark)

zml COMMAND --help tells more."""

COMMANDS = {
    "build": "pipelines.build_dataset",
    "harvest": "pipelines.harvest_records",
    "report": "beam_zml.consume.report",
    "ls": "beam_zml.consume.ls",
    "show": "beam_zml.consume.show",
    "export-png": "beam_zml.consume.export_png",
    "train": "pipelines.train_classifier",
    "setup-runner": "beam_zml.runners.setup_runner",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.stderr.write(f"zml: error: unknown command {command!r} (choose from {', '.join(COMMANDS)})\n")
        return 2
    module = __import__(COMMANDS[command], fromlist=["main"])
    try:
        status = module.main(rest)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of a pipe stopped early (zml ls OUT | head): not an error. Python's recipe
        # (docs.python.org/3/library/signal.html, "Note on SIGPIPE"): no more output, no traceback at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
