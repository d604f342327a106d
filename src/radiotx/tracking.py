"""Where a study's MLflow runs go, and whether that server answers.

Kept apart from :mod:`radiotx.track` and free of MLflow: the workflow asks these questions
at its start, on every invocation (dry runs too), and importing MLflow there would cost
every invocation seconds.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

SQLITE = "sqlite:///"


def default_tracking_uri(results_dir: str | Path) -> str:
    """``sqlite:///<abs results_dir>/mlflow.db``."""
    return SQLITE + (Path(results_dir).resolve() / "mlflow.db").as_posix()


def tracking_uri(configured: str, results_dir) -> str:
    """The config's tracking URI, else ``MLFLOW_TRACKING_URI``, else a SQLite store in
    ``results_dir``."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(results_dir)


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Raise ConnectionError, with the fix, when ``uri`` names an MLflow server (http or
    https) that does not answer its health check within ``timeout`` seconds: the workflow
    then stops at its start instead of after hours of modelling."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as answer:
            if answer.status == 200:
                return
            reason = f"HTTP {answer.status}"
    except (urllib.error.URLError, OSError) as err:
        reason = str(getattr(err, "reason", err))
    raise ConnectionError(
        f"the MLflow tracking server {uri} is unreachable ({reason}). Fix: start it "
        "(mlflow server --host <host> --port <port>), correct mlflow.tracking_uri in the "
        "config or MLFLOW_TRACKING_URI, or leave both empty for a local SQLite store at "
        "results/mlflow.db"
    )
