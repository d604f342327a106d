"""radiotx: multi-modal radiotranscriptomics."""

import os

__version__ = "0.1.0"

# MLflow reports usage to its developers from the moment it is imported unless this is set:
# a study's runs stay on the user's machines (MLFLOW_DISABLE_TELEMETRY=false allows it).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
