"""RNA-seq per-sample jobs and their gathering: radiotx (numpy normalisation, a long
parquet table per sample) against the same steps with scanpy's ``normalize_total`` and
``log1p`` and a one-row wide parquet table per sample. Each job runs in a fresh
interpreter, as a workflow job does, so imports are counted. Both give identical values.
The samples are synthetic 20,000-gene count tables (``--genes``)."""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from radiotx import demo
from radiotx.features import read_rows

JOB = """
import sys
from radiotx.features import rnaseq, write_row
features = rnaseq.extract(sys.argv[1], "P001")
write_row(features, "P001", sys.argv[2])
"""

# the same job with scanpy's normalisation and a wide one-row table
PEER = """
import sys
import anndata as ad
import numpy as np
import scanpy as sc
from radiotx.features import rnaseq
counts = rnaseq.read(sys.argv[1], "P001")
adata = ad.AnnData(X=counts.to_numpy(dtype="float64", copy=True)[np.newaxis, :])
sc.pp.normalize_total(adata, target_sum=1e6)
sc.pp.log1p(adata)
adata.obs_names, adata.var_names = ["P001"], counts.index.astype(str)
adata.to_df().rename_axis("patient_id").to_parquet(sys.argv[2])
"""


def timed(code: str, sample: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(sample), str(out)], check=True)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--gather", type=int, default=50, help="samples to gather")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(42)
        genes = pd.Index([f"GENE{i:05d}" for i in range(args.genes)], name="gene")
        mean = rng.lognormal(3, 2, args.genes)
        sample = tmp / "P001.tsv"
        demo.write_rnaseq(sample, pd.Series(rng.negative_binomial(2, 2 / (2 + mean)), genes))
        ours, theirs = [], []
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            ours.append(timed(JOB, sample, tmp / "long.parquet"))
            theirs.append(timed(PEER, sample, tmp / "wide.parquet"))
        wide = pd.read_parquet(tmp / "wide.parquet")
        same = np.array_equal(read_rows([tmp / "long.parquet"]).to_numpy(), wide.to_numpy())

        # gathering: the same file copied per patient, read into one table
        long_bytes, wide_bytes = (tmp / "long.parquet").read_bytes(), wide.to_parquet()
        frame = pd.read_parquet(tmp / "long.parquet")
        for i in range(args.gather):
            frame.assign(patient_id=f"P{i:04d}").to_parquet(tmp / f"l{i}.parquet", index=False)
            wide.set_axis([f"P{i:04d}"]).to_parquet(tmp / f"w{i}.parquet")
        start = time.perf_counter()
        read_rows([tmp / f"l{i}.parquet" for i in range(args.gather)])
        t_gather = time.perf_counter() - start
        start = time.perf_counter()
        pd.concat([pd.read_parquet(tmp / f"w{i}.parquet") for i in range(args.gather)])
        t_gather_wide = time.perf_counter() - start
    t_ours, t_theirs = statistics.median(ours), statistics.median(theirs)
    print(f"{args.genes} genes; one sample's job, median of {args.repeats} fresh interpreters")
    print(f"radiotx: {t_ours:.2f} s   scanpy + wide row: {t_theirs:.2f} s")
    print(f"ratio: x{t_theirs / t_ours:.1f}; identical features: {same}")
    print(f"file size: long {len(long_bytes):,} bytes, wide {len(wide_bytes):,} bytes")
    print(f"gathering {args.gather} samples: long {t_gather:.2f} s, wide {t_gather_wide:.2f} s")
    print(f"ratio: x{t_gather_wide / t_gather:.1f}")


if __name__ == "__main__":
    main()
