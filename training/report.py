"""The ``report/`` folder of an artifact: metrics.json, PNG plots and report.md."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_report"]


@contextlib.contextmanager
def _figure(path: Path, xlabel: str = "", ylabel: str = "", title: str = "") -> Iterator[Any]:
    """Axes of a 6 x 4 inch figure; after the block: labels, legend, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        yield ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _loss_plot(path: Path, loss: list[float], val_loss: list[float]) -> None:
    with _figure(path, "epoch", "MAE") as ax:
        ax.plot(range(1, len(loss) + 1), loss, label="training loss")
        if val_loss:
            ax.plot(range(1, len(val_loss) + 1), val_loss, label="validation loss")
        ax.grid(alpha=0.3)


def _histogram(path: Path, scores: np.ndarray, normal: np.ndarray, threshold: float) -> None:
    with _figure(path, "reconstruction error (MAE)", "beats") as ax:
        bins = np.linspace(0, float(np.quantile(scores, 0.995)) * 1.1, 60)
        ax.hist(scores[normal == 1], bins=bins, alpha=0.6, label="normal")
        ax.hist(scores[normal == 0], bins=bins, alpha=0.6, label="abnormal")
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.4f}")


def _reconstruction(path: Path, x: np.ndarray, recon: np.ndarray, title: str) -> None:
    with _figure(path, title=title) as ax:
        t = np.arange(len(x))
        ax.plot(t, x, "b", label="input")
        ax.plot(t, recon, "r", label="reconstruction")
        ax.fill_between(t, recon, x, color="lightcoral", label="error")


def _records_section(records: dict[str, list[dict[str, Any]]]) -> list[str]:
    """report.md's table of how beat extraction found each WFDB record's annotated beats."""
    lines = [
        "## WFDB records",
        "",
        "Beats cut by the stream stage's beat extraction (`detector.beats`), labelled by the "
        "beat annotation at each R peak. Sensitivity = matched / annotated, positive "
        "predictivity = matched / found; unmatched beats are left out. Turned over: the "
        "record's R waves pointed the other way than the model's beats, so it was cut inverted "
        "(`beat_recipe.match_polarity`).",
        "",
        "| set | record | fs | annotated | found | matched | missed | unmatched | Se | +P "
        "| turned over |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, stats in records.items():
        for r in stats:
            lines.append(
                f"| {name} | {r['name']} | {r['fs']:g} | {r['annotated']} | {r['found']} | "
                f"{r['matched']} | {r['missed']} | {r['unmatched']} | {r['sensitivity']:.4f} | "
                f"{r['positive_predictivity']:.4f} | {'yes' if r.get('inverted') else 'no'} |"
            )
    return [*lines, ""]


def write_report(
    folder: Path,
    *,
    metrics: dict[str, Any],
    history: dict[str, list[float]],
    test_scores: np.ndarray,
    test_normal: np.ndarray,
    examples: dict[str, tuple[np.ndarray, np.ndarray]],
    summary: dict[str, Any],
    records: dict[str, list[dict[str, Any]]] | None = None,
) -> Path:
    """Write metrics.json, loss.png, error_histogram.png, reconstruction_*.png, report.md.

    ``examples`` maps ``"normal"``/``"abnormal"`` to (input, reconstruction) in normalised
    units. ``records`` maps ``"training"``/``"test"`` to the per-record beat detection stats
    of WFDB sources (:meth:`training.records.RecordStats.to_dict`); given, they are written
    to records.json and tabulated in report.md.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    _loss_plot(folder / "loss.png", history.get("loss", []), history.get("val_loss", []))
    _histogram(folder / "error_histogram.png", test_scores, test_normal, metrics["threshold"])
    for name, (x, recon) in examples.items():
        _reconstruction(folder / f"reconstruction_{name}.png", x, recon, f"{name} beat")
    npos, apos = metrics["normal_positive"], metrics["anomaly_positive"]
    cm = apos["confusion_matrix"]
    lines = [
        f"# ecgwatch model report — {summary.get('model_version', '')}",
        "",
        f"Preset `{summary.get('preset')}`, kind `{summary.get('kind')}`, seed "
        f"{summary.get('seed')}, data `{summary.get('data')}`"
        f"{' (WFDB records)' if summary.get('data_kind') == 'wfdb' else ''} (sha256 "
        f"`{str(summary.get('data_sha256'))[:12]}…`), trained in "
        f"{summary.get('train_seconds', 0):.1f} s.",
        "",
        f"Threshold: **{metrics['threshold']:.6f}** ({summary.get('threshold_policy')}).",
        "",
        "| convention | accuracy | precision | recall | F1 | ROC-AUC | PR-AUC |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| normal = positive (seed) | {npos['accuracy']:.4f} | {npos['precision']:.4f} | "
        f"{npos['recall']:.4f} | | | |",
        f"| anomaly = positive | {apos['accuracy']:.4f} | {apos['precision']:.4f} | "
        f"{apos['recall']:.4f} | {apos['f1']:.4f} | {apos['roc_auc']:.4f} | "
        f"{apos['pr_auc']:.4f} |",
        "",
        f"Confusion (anomaly positive): TP {cm['tp']}, FP {cm['fp']}, FN {cm['fn']}, "
        f"TN {cm['tn']} on {metrics['n']} test beats.",
        "",
        "![loss](loss.png) ![errors](error_histogram.png)",
        "![normal](reconstruction_normal.png) ![abnormal](reconstruction_abnormal.png)",
        "",
    ]
    if summary.get("test_data"):
        lines[4:4] = [f"Tested on every beat of `{summary['test_data']}`.", ""]
    if records:
        (folder / "records.json").write_text(json.dumps(records, indent=2, sort_keys=True))
        lines += _records_section(records)
    (folder / "report.md").write_text("\n".join(lines))
    return folder
