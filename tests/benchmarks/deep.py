"""Training throughput of the deep encoders: SimCLR pretraining of the CNN and the ViT on
synthetic crops, in crops per second (each crop gives two views), on the CPU and, when
torch sees one, on the GPU, with the batch size and peak memory.

The same fits run on every device in one process, so the GPU/CPU and ViT/CNN ratios are
measured side by side (absolute times vary between runs of these machines).

    python tests/benchmarks/deep.py [--crops 256] [--size 24] [--epochs 3] [--batch 32]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from radiotx.deep.encoder import DeepEncoder  # noqa: E402


def crops(n: int, size: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.random((n, size**3), dtype=np.float32)
    return pd.DataFrame(values, columns=[f"v{i:06d}" for i in range(size**3)])


def peak_memory_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def throughput(X, architecture: str, device: str, epochs: int, batch: int, threads: int):
    """Crops per second of SimCLR training, after a one-epoch warm-up fit."""
    import torch

    common = dict(architecture=architecture, batch_size=batch, device=device, threads=threads)
    DeepEncoder(epochs=1, seed=1, **common).fit(X)  # warm-up: kernels, allocator
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    DeepEncoder(epochs=epochs, seed=2, **common).fit(X)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return len(X) * epochs / seconds, seconds, peak_memory_mb(device)


def main(argv=None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=256)
    parser.add_argument("--size", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    args = parser.parse_args(argv)
    X = crops(args.crops, args.size)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for architecture in ("cnn", "vit"):
            rate, seconds, memory = throughput(
                X, architecture, device, args.epochs, args.batch, args.threads
            )
            rows.append((device, architecture, rate, seconds, memory))
    name = torch.cuda.get_device_name() if "cuda" in devices else "no GPU"
    print(f"torch {torch.__version__}; {name}; {args.crops} crops of {args.size}^3, "
          f"batch {args.batch}, {args.epochs} epochs, {args.threads} CPU thread(s)")  # fmt: skip
    print(f"{'device':6} {'encoder':7} {'crops/s':>9} {'seconds':>8} {'peak MiB':>9}")
    for device, architecture, rate, seconds, memory in rows:
        print(f"{device:6} {architecture:7} {rate:9.1f} {seconds:8.2f} {memory:9.0f}")
    rates = {(d, a): r for d, a, r, _, _ in rows}
    for device in devices:
        print(f"{device}: ViT / CNN throughput x{rates[device, 'vit'] / rates[device, 'cnn']:.2f}")
    if "cuda" in devices:
        for architecture in ("cnn", "vit"):
            ratio = rates["cuda", architecture] / rates["cpu", architecture]
            print(f"{architecture}: GPU / CPU throughput x{ratio:.1f}")


if __name__ == "__main__":
    main()
