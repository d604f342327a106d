"""The ``radiotx`` command line: ``radiotx predict`` scores new patients with a trained
model."""

from __future__ import annotations

import argparse
import sys

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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
