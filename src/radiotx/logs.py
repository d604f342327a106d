"""Send a job's logging and warnings to its Snakemake log file."""

from __future__ import annotations

import logging
import warnings


def to_file(path) -> None:
    """Route the root logger and Python warnings of this process to ``path``."""
    logging.basicConfig(
        filename=str(path),
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
