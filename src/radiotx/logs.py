"""Send a job's logging, warnings and any uncaught error to its Snakemake log file."""

from __future__ import annotations

import logging
import sys
import warnings


def to_file(path) -> None:
    """Route the root logger, Python warnings and the traceback of an uncaught exception
    of this process to ``path``; the traceback also still reaches stderr, where Snakemake
    shows it."""
    logging.basicConfig(
        filename=str(path),
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    sys.excepthook = _log_then_raise


def _log_then_raise(kind, error, trace) -> None:
    logging.getLogger("radiotx").critical("job failed", exc_info=(kind, error, trace))
    logging.shutdown()
    sys.__excepthook__(kind, error, trace)
