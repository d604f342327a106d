"""What the inner CV's model choice costs on the real NSCLC cohort: every fixed candidate
and the ``selected`` model of one endpoint on one block (expression, or the clinical
table), scored on the same repeated outer folds, with the cost of selection (selected
minus each fixed candidate).

The grid is that of ``config/examples/nsclc_radiogenomics.yaml`` (logistic regression,
RBF SVM and random forest; ANOVA or mRMR; 10 or 30 features; SMOTE or class weights), on
the 500 most variable genes or the example's clinical columns, 5 outer x 3 inner folds.
The cohort is built in process from the shared CSV files, as ``tests/test_realdata.py``
does.

    .venv/bin/python tests/benchmarks/model_choice.py --endpoint egfr --repeats 5
    .venv/bin/python tests/benchmarks/model_choice.py --endpoint recurrence --block clinical
    .venv/bin/python tests/benchmarks/model_choice.py --repeats 1 --permutations 20

``--endpoint overall_survival`` scores the survival models (Coxnet, random survival
forest) by the C-index. ``--permutations N`` also re-runs the whole procedure on N label
permutations (the workflow's draws, ``radiotx.experiment.permuted``) and prints each
model's null distribution of the pooled AUC or C-index, which an honest procedure centres
on 0.5. ``across_folds`` is the pooled value as it was computed before pairs were kept
within outer folds, for comparison.

The data is read from ``RADIOTX_DATA`` (default ``../shared/data/nsclc-radiogenomics``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from radiotx import cohort, compare, experiment, splits, survival

DATA = Path(os.environ.get("RADIOTX_DATA", "../shared/data/nsclc-radiogenomics"))
ENDPOINTS = {  # the example config's endpoints
    "egfr": {"column": "EGFR mutation status", "positive": "Mutant"},
    "recurrence": {"column": "Recurrence", "positive": "yes"},
    "survival_status": {"column": "Survival Status", "positive": "Dead"},
    "overall_survival": {
        "event": "Survival Status", "positive": "Dead", "start": "CT Date",
        "end": ["Date of Death", "Date of Last Known Alive"],
    },
}  # fmt: skip


CLINICAL = {  # the example config's clinical columns
    "numeric": ["Age at Histological Diagnosis"],
    "categorical": [
        "Gender", "Smoking status", "Histology ", "Pathological T stage",
        "Pathological N stage",
    ],
}  # fmt: skip


def real_cohort(endpoint: str, block: str):
    table = cohort.read_clinical(DATA / "clinical.csv", id_column="Case ID")
    if block == "rnaseq":
        features = pd.read_csv(DATA / "expression_log_zscore.csv", index_col=0).T
    else:
        features = cohort.encode_clinical(table, **CLINICAL)
    columns = cohort.endpoint_columns(table, endpoint, ENDPOINTS[endpoint])
    mdata = cohort.build({block: features}, columns)
    return mdata, columns[endpoint].reindex(features.index).dropna()  # labels, or events


def across_folds(predictions: pd.DataFrame) -> float:
    """The pooled AUC or C-index as computed before pairs were kept within outer folds
    (every fold's scores ranked together), averaged over repeats: for comparison only."""
    values = []
    for _, part in predictions.groupby("repeat") if "repeat" in predictions else [(0, predictions)]:
        if "event" in part:
            values.append(survival.concordance(survival.as_structured(part), part["score"]))
        else:
            values.append(roc_auc_score(part["y_true"], part["score"]))
    return float(sum(values) / len(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="egfr", choices=sorted(ENDPOINTS))
    parser.add_argument("--block", default="rnaseq", choices=["rnaseq", "clinical"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--inner-repeats", type=int, default=1, help="cv.inner_repeats")
    parser.add_argument(
        "--choice", default="one_se", choices=["best", "one_se"], help="model.choice"
    )
    parser.add_argument("--permutations", type=int, default=0, help="label permutations")
    args = parser.parse_args()

    mdata, labels = real_cohort(args.endpoint, args.block)
    folds = splits.make_splits(labels, n_splits=5, repeats=args.repeats, seed=args.seed)
    settings = experiment.Settings(
        seed=args.seed, inner_repeats=args.inner_repeats, choice=args.choice,
        k_features=(10, 30),
        selectors=("anova", "mrmr"), balancers=("smote", "class_weight"),
        candidates=("logreg", "svm", "rf"), survival_models=("coxnet", "rsf"),
        n_boot=200, rnaseq={"min_expression": None, "genes": "variance", "n_genes": 500},
    )  # fmt: skip
    job = experiment.procedure(
        mdata, folds, endpoint=args.endpoint, pipeline=args.block, modalities=[args.block],
        settings=settings,
    )  # fmt: skip
    started = time.perf_counter()
    results = job.evaluate()
    seconds = time.perf_counter() - started
    n_folds = sum(len(r.folds) for r in results.values()) // len(results)
    print(
        f"{args.endpoint} ({args.block}): {len(labels)} patients, {int(labels.sum())} "
        f"positive or events; inner CV {args.inner_repeats} x 3 folds, choice {args.choice}; "
        f"{args.repeats} x 5 outer folds in {seconds:.0f} s ({seconds / n_folds:.1f} s a fold)"
    )
    metric = "roc_auc" if job.survival is None else "c_index"
    rows, metrics = [], []
    for name, result in results.items():
        if job.survival is None:
            summary = result.summary(n_boot=200, seed=args.seed)
        else:
            summary = survival.summary(result, n_boot=200, seed=args.seed)
        rows.append({"model": name, f"pooled_{metric}": summary["pooled"][metric],
                     "across_folds": across_folds(result.predictions),
                     "fold_mean": summary["mean"][metric],
                     "ci_low": summary["ci95"][metric][0],
                     "ci_high": summary["ci95"][metric][1]})  # fmt: skip
        metrics.append({"endpoint": args.endpoint, "pipeline": args.block, "classifier": name,
                        "folds": result.folds, "primary_metric": metric})  # fmt: skip
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    cost = compare.selection_cost(metrics)
    columns = ["candidate", "selected", "fixed", "cost", "ci_low", "ci_high", "t_p"]
    print(cost[columns].round(3).to_string(index=False))
    if args.permutations:
        null = pd.DataFrame([experiment.permuted(job, i) for i in range(args.permutations)])
        print(f"pooled {metric} under {args.permutations} label permutations:")
        print(null.describe().loc[["mean", "std", "min", "max"]].round(3).to_string())


if __name__ == "__main__":
    main()
