"""The follow-up time and event of a survival endpoint, per patient, from the clinical
table (pandas only: the workflow reads them before any job, where importing the modelling
libraries would slow every start)."""

from __future__ import annotations

import pandas as pd

from radiotx.errors import InputError


def time_column(endpoint: str) -> str:
    """The cohort's obs column with the follow-up time of a survival endpoint (the
    endpoint's own column holds the event)."""
    return f"{endpoint}__time"


def labels(table: pd.DataFrame, time: str, event: str, event_value, path=None) -> pd.DataFrame:
    """``time`` (float) and ``event`` (bool) per patient; rows with either missing are NaN.

    ``event_value`` is the value of the ``event`` column meaning the event happened (e.g.
    ``Dead``); any other value is censoring at ``time``.
    """
    for column in (time, event):
        if column not in table.columns:
            raise InputError(
                f"survival column '{column}' is not in the clinical table",
                path=path,
                fix="correct endpoints.<name>.time / event in config/config.yaml",
            )
    times = pd.to_numeric(table[time], errors="coerce")
    events = table[event].astype("string").str.strip() == str(event_value)
    known = times.notna() & table[event].notna()
    if (times[known] < 0).any():
        patient = times[known][times[known] < 0].index[0]
        raise InputError(
            f"negative survival time {times[patient]}", patient=patient, path=path, fix="check it"
        )
    out = pd.DataFrame({"time": times, "event": events.astype("boolean")}, index=table.index)
    return out.where(known)


def endpoint_labels(table: pd.DataFrame, spec: dict, path=None) -> pd.DataFrame:
    """``time`` and ``event`` of a survival endpoint of the config (``endpoints.<name>``):
    ``event`` is the column whose value ``positive`` means the event happened, and the
    follow-up time is the ``time`` column, or the days from the ``start`` date column to
    the first of the ``end`` date columns a patient has (e.g. date of death, else date last
    known alive). Cells listed in ``missing`` are missing."""
    table = table.copy()
    missing = {str(value).strip() for value in spec.get("missing") or ()}
    if missing:
        for column in table.columns:
            text = table[column].astype("string").str.strip()
            table[column] = table[column].where(~text.isin(missing).fillna(False))
    event = spec["event"]
    if spec.get("time"):
        return labels(table, spec["time"], event, spec["positive"], path)
    ends = [spec["end"]] if isinstance(spec["end"], str) else list(spec["end"])
    for column in [spec["start"], *ends]:
        if column not in table.columns:
            raise InputError(
                f"survival date column '{column}' is not in the clinical table",
                path=path,
                fix="correct endpoints.<name>.start / end in config/config.yaml",
            )

    def dates(column):
        return pd.to_datetime(table[column], errors="coerce", format="mixed")

    end = dates(ends[0])
    for column in ends[1:]:
        end = end.fillna(dates(column))
    days = (end - dates(spec["start"])).dt.days
    return labels(table.assign(_time=days), "_time", event, spec["positive"], path)
