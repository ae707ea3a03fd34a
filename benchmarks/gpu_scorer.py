"""Scorer on a GPU with Keras 3 on torch or jax (no TensorFlow): ``benchmarks/gpu_check.sh``.

Loads the registry's ``model.keras`` (safe mode) and ``detector.json`` normalisation, scores
windows (NumPy in, NumPy scores out: transfers included) at batch sizes 1/32/256/4096 on the
GPU and on the CPU, checks both against a NumPy forward pass of the same weights, and prints a
table. Usage: ``python -m benchmarks.gpu_scorer --registry DIR [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scorer import BATCH_SIZES, bare_numpy, rate

__all__ = ["main"]


def _rate(fn: Any, x: np.ndarray, min_s: float) -> float:
    fn(x)  # a second warm-up before the one in rate(): compilation / cuDNN autotuning
    return rate(fn, x, min_s)


def _scorer(model_path: Path, device: str, lo: float, hi: float) -> Any:
    """``windows -> MAE scores`` (NumPy in and out) with the model placed on ``device``."""
    import keras

    backend = keras.backend.backend()
    with keras.device(device):
        model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    scale = np.float32(1.0 / (hi - lo))
    if backend == "torch":
        import torch

        dev = torch.device("cuda" if device.startswith("gpu") else "cpu")

        def score_torch(x: np.ndarray) -> np.ndarray:
            z = (x - np.float32(lo)) * scale
            with torch.inference_mode(), keras.device(device):
                t = torch.from_numpy(z).to(dev)
                err = (model(t, training=False) - t).abs().mean(dim=1)
                return err.cpu().numpy()

        return score_torch
    if backend == "jax":
        import jax

        dev = jax.devices("gpu" if device.startswith("gpu") else "cpu")[0]
        tv = [jax.device_put(v.value, dev) for v in model.trainable_variables]
        ntv = [jax.device_put(v.value, dev) for v in model.non_trainable_variables]

        @jax.jit
        def fwd(tv: Any, ntv: Any, z: Any) -> Any:
            out, _ = model.stateless_call(tv, ntv, z, training=False)
            return jax.numpy.abs(out - z).mean(axis=1)

        def score_jax(x: np.ndarray) -> np.ndarray:
            z = jax.device_put((x - np.float32(lo)) * scale, dev)
            return np.asarray(fwd(tv, ntv, z))

        return score_jax
    raise SystemExit(f"backend {backend!r}: this check is for torch or jax")


def _has_gpu() -> bool:
    import keras

    if keras.backend.backend() == "torch":
        import torch

        return bool(torch.cuda.is_available())
    import jax

    return any(d.platform == "gpu" for d in jax.devices())


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--registry", default=".ecgwatch/models")
    p.add_argument("--version", default="latest")
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


def _measure(root: Path, min_s: float) -> dict[str, Any]:
    """Windows/s per batch size of NumPy and of each device, and each device's diff to NumPy."""
    import keras

    meta = json.loads((root / "detector.json").read_text())
    lo, hi = float(meta["normalisation"]["min"]), float(meta["normalisation"]["max"])
    model_path = root / "model.keras"
    rng = np.random.default_rng(0)
    x = (rng.random((max(BATCH_SIZES), 140), dtype=np.float32) * (hi - lo) + lo) * 0.5
    ref_model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    with keras.device("cpu"):
        ref = bare_numpy(ref_model, lo, hi)
    devices = ["cpu"] + (["gpu"] if _has_gpu() else [])
    results: dict[str, Any] = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "model_version": meta.get("model_version"),
        "devices": devices,
        "windows_per_s": {},
        "max_abs_diff_vs_numpy": {},
    }
    expected = ref(x[:256])
    results["windows_per_s"]["numpy"] = {str(b): _rate(ref, x[:b], min_s) for b in BATCH_SIZES}
    for dev in devices:
        fn = _scorer(model_path, dev, lo, hi)
        results["max_abs_diff_vs_numpy"][dev] = float(np.abs(fn(x[:256]) - expected).max())
        results["windows_per_s"][dev] = {str(b): _rate(fn, x[:b], min_s) for b in BATCH_SIZES}
    return results


def _print_table(results: dict[str, Any]) -> None:
    gpu_name = ""
    if "gpu" in results["devices"] and results["backend"] == "torch":
        import torch

        gpu_name = torch.cuda.get_device_name(0)
    print(f"scorer, Keras {results['keras']} on {results['backend']} {gpu_name}".rstrip())
    print(f"{'windows/s':<12}" + "".join(f"{'batch ' + str(b):>14}" for b in BATCH_SIZES))
    for name, row in results["windows_per_s"].items():
        print(f"{name:<12}" + "".join(f"{row[str(b)]:>14,.0f}" for b in BATCH_SIZES))
    for dev, diff in results["max_abs_diff_vs_numpy"].items():
        print(f"max |score - numpy| on {dev}: {diff:.2e}")
    if "gpu" not in results["devices"]:
        print("no GPU visible to the backend: CPU rows only")


def main(argv: list[str] | None = None) -> int:
    """Run the check and print its table.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``): ``--registry``, ``--version``,
        ``--min-seconds``, ``--out``.

    Returns
    -------
    int
        0 when the scorer on every device agrees with NumPy to 1e-5, else 1.
    """
    args = _parse(argv)
    results = _measure(Path(args.registry) / args.version, args.min_seconds)
    _print_table(results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    ok = all(d <= 1e-5 for d in results["max_abs_diff_vs_numpy"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
