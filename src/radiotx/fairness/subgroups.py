"""Subgroups of a cohort and how the cohort is spread over them.

A model can only be as fair as its cohort allows: a subgroup with few patients, another
label prevalence or more missing modalities is where performance gaps and shortcuts come
from. The attributes (sex, age band, site, sequencing batch, ...) are declared in the
config (``fairness.attributes``) and derived here once, from the clinical table, for every
later step: the cohort report, the shift tests, subgroup metrics, mitigation and the
leave-one-site-out folds.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from radiotx.errors import InputError

log = logging.getLogger(__name__)

MISSING = "missing"  # the group of a patient whose attribute is not recorded


@dataclass(frozen=True)
class Attribute:
    """One subgroup attribute: a clinical ``column`` as it is, cut into bands at ``bins``
    (numeric columns, e.g. age), or the first group of the regular expression ``pattern``
    (e.g. the site prefix of a patient id)."""

    name: str
    column: str
    bins: tuple[float, ...] | None = None
    pattern: str | None = None

    @classmethod
    def from_config(cls, name: str, spec) -> Attribute:
        """``sex: sex``, ``age: {column: age, bins: [0, 60, 70, 120]}`` or
        ``site: {column: Case ID, pattern: "^([A-Z0-9]+)-"}``."""
        if isinstance(spec, str):
            return cls(name, spec)
        bins = spec.get("bins")
        return cls(
            name,
            spec["column"],
            tuple(float(b) for b in bins) if bins else None,
            spec.get("pattern") or None,
        )

    def values(self, table: pd.DataFrame, path=None) -> pd.Series:
        """Each patient's group (strings; :data:`MISSING` where not recorded)."""
        if self.column in table.columns:
            raw = table[self.column]
        elif self.column == table.index.name:
            raw = table.index.to_series()
        else:
            raise InputError(
                f"fairness attribute '{self.name}' names the column '{self.column}', which "
                f"the clinical table does not have (it has: {', '.join(map(str, table.columns))})",
                path=path,
                fix="name one of the clinical table's columns in fairness.attributes",
            )
        if self.bins is not None:
            numeric = pd.to_numeric(raw, errors="coerce")
            bands = pd.cut(numeric, bins=list(self.bins), right=False, labels=self._bands())
            groups = bands.astype(object)
            self._warn_unplaced(raw, groups, path)
        elif self.pattern is not None:
            groups = raw.astype(str).str.extract(self.pattern, expand=False)
            groups = groups.where(raw.notna())
        else:
            groups = raw.astype(object).where(raw.notna())
            groups = groups.map(
                lambda v: v if isinstance(v, str) else _plain(v), na_action="ignore"
            )
        groups = groups.where(groups.astype(str).str.strip() != "")
        return groups.fillna(MISSING).astype(str).rename(self.name)

    def _warn_unplaced(self, raw: pd.Series, bands: pd.Series, path) -> None:
        # Recorded values that fall in no band (text, or outside the bins) are counted as
        # missing; the audit goes on, but the reader must learn which patients and why.
        recorded = raw.notna() & (raw.astype(str).str.strip() != "")
        unplaced = raw[recorded & bands.isna()]
        if unplaced.empty:
            return
        shown = ", ".join(f"{p} ({v!r})" for p, v in list(unplaced.items())[:10])
        log.warning(
            "fairness attribute '%s': %d patients' values in column '%s'%s are not numbers "
            "within the bins %s and are counted as missing: %s%s. Fix: correct the values "
            "or widen fairness.attributes.%s.bins",
            self.name,
            unplaced.size,
            self.column,
            f" of {path}" if path else "",
            self._bands(),
            shown,
            ", ..." if unplaced.size > 10 else "",
            self.name,
        )

    def _bands(self) -> list[str]:
        edges = [_plain(b) for b in self.bins]
        return [f"{low}-{high}" for low, high in zip(edges[:-1], edges[1:], strict=True)]


def _plain(value) -> str:
    """``60.0`` -> ``60``: numbers as a reader writes them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def attributes_from_config(fairness: dict) -> list[Attribute]:
    return [Attribute.from_config(name, spec) for name, spec in fairness["attributes"].items()]


def subgroups(table: pd.DataFrame, attributes: list[Attribute], patients=None, path=None):
    """Patients x attributes: each patient's group under every attribute (index: patient
    id; ``patients`` not in the table are in every attribute's :data:`MISSING` group)."""
    frame = pd.DataFrame({a.name: a.values(table, path) for a in attributes}, index=table.index)
    frame.index = frame.index.astype(str)
    frame.index.name = "patient_id"
    if patients is not None:
        frame = frame.reindex(pd.Index(list(patients), dtype=str, name="patient_id"))
    return frame.fillna(MISSING)


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False).set_index("patient_id")


def write(frame: pd.DataFrame, path) -> None:
    frame.to_csv(path, sep="\t")


def cohort_table(
    groups: pd.DataFrame, labels: dict[str, pd.Series], availability: pd.DataFrame
) -> pd.DataFrame:
    """Per attribute and group: patients, their share of the cohort, the prevalence of
    every binary endpoint (``prevalence_<endpoint>``, among the patients labelled) and
    the share of patients without each modality (``missing_<modality>``).

    ``labels`` maps an endpoint to its 0/1 labels (NaN: unlabelled); ``availability`` is
    the cohort's patients x modalities table of booleans."""
    rows = []
    for attribute in groups.columns:
        for group, members in groups.groupby(attribute).groups.items():
            row = {
                "attribute": attribute,
                "group": group,
                "n": len(members),
                "share": len(members) / len(groups),
            }
            for endpoint, y in labels.items():
                known = y.reindex(members).dropna()
                row[f"n_{endpoint}"] = len(known)
                row[f"prevalence_{endpoint}"] = float(known.mean()) if len(known) else np.nan
            for modality in availability.columns:
                has = availability[modality].reindex(members, fill_value=False).astype(bool)
                row[f"missing_{modality}"] = float(1 - has.mean())
            rows.append(row)
    return pd.DataFrame(rows)


def flags(table: pd.DataFrame, min_group: int = 5, gap: float = 0.15) -> list[str]:
    """Plain-language warnings about a :func:`cohort_table`: groups smaller than
    ``min_group``, and prevalence or missing-modality rates that differ between an
    attribute's groups (of at least ``min_group`` patients) by more than ``gap``."""
    notes = []
    for attribute, part in table.groupby("attribute", sort=False):
        small = part[(part["n"] < min_group) & (part["group"] != MISSING)]
        for row in small.itertuples():
            notes.append(
                f"{attribute} = {row.group}: {row.n} patients, too few to compare "
                f"(fewer than {min_group}); its metrics are not interpreted"
            )
        large = part[part["n"] >= min_group]
        for column in [c for c in table.columns if re.match(r"(prevalence|missing)_", c)]:
            values = large.set_index("group")[column].dropna()
            # rounded: 0.45 - 0.30 is a gap of 0.15, not more
            if len(values) >= 2 and round(values.max() - values.min(), 9) > gap:
                kind, name = column.split("_", 1)
                what = f"prevalence of {name}" if kind == "prevalence" else f"share without {name}"
                notes.append(
                    f"{attribute}: {what} ranges from {values.min():.0%} ({values.idxmin()}) "
                    f"to {values.max():.0%} ({values.idxmax()})"
                )
    return notes
