"""radiotx: multi-modal radiotranscriptomics."""

__version__ = "0.1.0"
