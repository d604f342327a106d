"""The ``radiotx`` command line: ``radiotx predict`` scores new patients with a trained
model; ``radiotx reproduce`` re-runs a study from its manifest and reports what differs."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from radiotx.errors import InputError


def _tables(values) -> dict[str, str]:
    out = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--table takes NAME=PATH, not {value!r}")
        out[name] = path
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="radiotx", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict",
        help="score new patients with a trained model",
        description="Extract the new patients' features as the training study did, apply the "
        "final model and write its calibrated probabilities (a risk score for survival).",
    )
    predict.add_argument("model", help="results/models/<endpoint>/<pipeline>/<model>/model.joblib")
    predict.add_argument(
        "--patients", required=True, help="patient sheet (patient_id, image, mask, rnaseq)"
    )
    predict.add_argument("--clinical", help="clinical table of the new patients")
    predict.add_argument("--table", action="append", metavar="NAME=PATH", help="a feature table")
    predict.add_argument("--manifest", help="the training study's results/manifest.json")
    predict.add_argument("--out", required=True, help="predictions table to write (TSV)")
    reproduce = commands.add_parser(
        "reproduce",
        help="re-run a study from its manifest and report what differs",
        description="Re-run a study in a new working directory from the manifest it wrote "
        "(results/manifest.json) or logged to MLflow (its parent run id), then report every "
        "difference in inputs, package versions, code and results.",
    )
    reproduce.add_argument("source", help="results/manifest.json, or an MLflow parent run id")
    reproduce.add_argument("--workdir", required=True, help="a new, empty working directory")
    reproduce.add_argument(
        "--study-dir",
        help="the directory the study ran in, whose input files are used (default: the "
        "manifest's results/.. , or the current directory for a run id)",
    )
    reproduce.add_argument("--tracking-uri", help="MLflow store of the run id (default: "
                           "$MLFLOW_TRACKING_URI, else <study-dir>/results/mlflow.db)")  # fmt: skip
    reproduce.add_argument("--cores", type=int, default=1)
    reproduce.add_argument("--snakefile", help="default: the Snakefile of this radiotx checkout")
    args = parser.parse_args(argv)
    if args.command == "reproduce":
        return _reproduce(args)

    from radiotx import predict as predicting

    try:
        table = predicting.predict(
            args.model, args.patients, clinical_path=args.clinical,
            table_paths=_tables(args.table), manifest_path=args.manifest,
        )  # fmt: skip
    except InputError as err:
        print(f"radiotx predict: {err}", file=sys.stderr)
        return 2
    table.to_csv(args.out, sep="\t", index=False)
    failed = int((table["problem"] != "").sum())
    print(f"{len(table) - failed} of {len(table)} patients scored without problems -> {args.out}")
    if failed:
        print(f"{failed} with problems (see the problem column)", file=sys.stderr)
    return 0


def _reproduce(args) -> int:
    from radiotx import manifest, reproduce

    snakefile = Path(args.snakefile or Path(__file__).resolve().parents[2] / "Snakefile")
    if not snakefile.is_file():
        print(f"radiotx reproduce: no Snakefile at {snakefile}; pass --snakefile", file=sys.stderr)
        return 2
    logged = None
    if re.fullmatch(r"[0-9a-f]{32}", args.source) and not Path(args.source).exists():
        from radiotx import track, tracking

        study_dir = Path(args.study_dir or ".")
        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        uri = uri or tracking.default_tracking_uri(study_dir / "results")
        recorded, logged = track.study_record(args.source, uri)
        try:
            recorded = reproduce.named_inputs(recorded, study_dir)
        except FileNotFoundError as err:
            print(f"radiotx reproduce: {err}", file=sys.stderr)
            return 2
    else:
        path = Path(args.source)
        if not path.is_file():
            print(f"radiotx reproduce: {path} is not a manifest file or a run id", file=sys.stderr)
            return 2
        recorded = manifest.read(path)
        study_dir = Path(args.study_dir or path.resolve().parent.parent)
    try:
        differences, compared = reproduce.reproduce(
            recorded, study_dir, args.workdir, snakefile, args.cores, logged
        )
    except (FileExistsError, RuntimeError) as err:
        print(f"radiotx reproduce: {err}", file=sys.stderr)
        return 2
    print(reproduce.report(differences, compared))
    return 1 if any(d.kind == "result" for d in differences) else 0


if __name__ == "__main__":
    sys.exit(main())
