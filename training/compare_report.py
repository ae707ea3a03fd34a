"""The ``ecgwatch compare`` report: aggregated tables, the target check and the ROC plot.

The report is generated, except its *hand-written* sections: each is kept verbatim, from
the file being replaced, every time the report is regenerated (:func:`hand_written_sections`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from training.compare import KIND_EPOCHS, KIND_TRAINING, THRESHOLDS, CompareResult, RunResult
from training.config import load_config
from training.errors import TrainingError

__all__ = [
    "CLOSING_NOTE",
    "PROTOCOL",
    "QUICK_NOTE",
    "ROBUSTNESS_INTRO",
    "ROBUSTNESS_TARGET",
    "TARGET",
    "aggregate",
    "hand_written_sections",
    "write_markdown",
    "write_robustness_plot",
    "write_roc_plot",
]

#: The protocol, as the report states it after its header (markdown). ``{kind_training}``
#: and ``{repetitions}`` are filled in from :data:`training.compare.KIND_TRAINING` and the
#: runs themselves.
PROTOCOL = """\
Protocol (the seed's): all beats merged, `train_test_split(test_size=0.2)`, the model fits
normal training beats only. 20 % of the normal training beats are held out (for the
`quantile` threshold and the label-free validation loss). No test label steers anything:

* label-free thresholds: `mean_std` (k = 1 on the fitted beats, the seed) and `quantile`
  (q = 0.98 / 0.99 on the held-out normal beats);
* `best_f1` uses *labelled validation beats from the training split* (held-out normals +
  the abnormal training beats, which the autoencoder never sees) and is reported apart;
* model selection uses `val_roc_auc` on the same validation beats (training split only)
  and the held-out normal MAE; test metrics are only ever reported.

Rows: `seed` is the seed preset (dense, 20 epochs of batch 512) with 20 % of its normal
beats held out like every other row; `recommended` is that preset as shipped;
`recommended, ungated alignment`, `recommended, no alignment`, `recommended, length search`,
`recommended, no noise discount` and `recommended, plain MAE` are the same fitted model (not
retrained) scored with every window aligned (no `model.align.gate`), without the
scoring-time alignment (`model.align`), with the length search on top
(`model.length_search.max_error: 0.1`), without the per-beat noise discount
(`model.noise_discount: 0`), and without it and the residual smoothing
(`model.score_smoothing: 0`); the other kinds use
their default architecture, the recommended normalisation and scoring and a smaller training
budget ({kind_training}).

Robustness: every seed-split run also scores the test beats perturbed as in
`training.robustness` (offset, gain, baseline wander, noise, a window cut early or late, a
misjudged beat length, one combination; fixed seed), at the config's own label-free
threshold.

{repetitions}"""

#: Under the header of a ``--quick`` report.
QUICK_NOTE = (
    "> **Quick run** (CI smoke test): 2 epochs, one seed, one split. These numbers say "
    "the comparison works, not how good the models are; run `ecgwatch compare` for "
    "the real table."
)

#: Above the robustness table.
ROBUSTNESS_INTRO = (
    "Each test beat changed as a feed or another producer's pre-processing would "
    "(`training/robustness.py`, fixed seed; strengths in z-normalised ECG5000 units or "
    "samples; a window cut later or longer takes the start of the next beat, modelled "
    "as this beat's start). Threshold: each config's own, label-free. False alarms = "
    "normal beats flagged; detection = abnormal beats flagged."
)

#: The last paragraph of the generated part.
CLOSING_NOTE = (
    "`best_f1` looks at labels (of validation beats from the training split, never the "
    "test split); it shows what a labelled threshold could add and is never used by a "
    "preset. Training time and scoring cost were measured on the machine that ran the "
    "comparison (scoring: one batched `score` call over the test split, per window)."
)

#: The first line of a hand-written section: ``<!-- hand-written: NAME ... -->``; its last
#: line is ``<!-- end hand-written: NAME -->``.
_HAND_WRITTEN = re.compile(r"^<!-- hand-written: ([\w-]+)\b.*-->$", re.MULTILINE)


def aggregate(runs: Sequence[RunResult]) -> dict[str, dict[str, tuple[float, float]]]:
    """Mean and std per config name of every number, keyed ``name → metric → (mean, std)``."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name in dict.fromkeys(r.name for r in runs):
        group = [r for r in runs if r.name == name]
        cols: dict[str, list[float]] = {}
        for r in group:
            for key in ("train_seconds", "score_us_per_window", "holdout_mae", "val_roc_auc"):
                cols.setdefault(key, []).append(getattr(r, key))
            cols.setdefault("roc_auc", []).append(r.roc_auc)
            cols.setdefault("pr_auc", []).append(r.pr_auc)
            for pol, m in r.metrics.items():
                for key, v in m.items():
                    cols.setdefault(f"{pol}|{key}", []).append(v)
        out[name] = {k: (float(np.mean(v)), float(np.std(v))) for k, v in cols.items()}
    return out


def _pm(stat: tuple[float, float], digits: int = 3) -> str:
    return f"{stat[0]:.{digits}f} ± {stat[1]:.{digits}f}"


def _tables(agg: dict[str, dict[str, tuple[float, float]]], n: int) -> list[str]:
    lines = [
        "| model | val ROC-AUC (train split) | holdout MAE | test ROC-AUC | test PR-AUC | "
        "train s | scoring µs/window |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in agg.items():
        lines.append(
            f"| {name} | {_pm(s['val_roc_auc'], 4)} | {_pm(s['holdout_mae'], 4)} | "
            f"{_pm(s['roc_auc'], 4)} | {_pm(s['pr_auc'], 4)} | {_pm(s['train_seconds'], 1)} | "
            f"{_pm(s['score_us_per_window'], 2)} |"
        )
    lines += [
        "",
        f"Test metrics by threshold policy (anomaly = positive for precision/recall/F1; "
        f"accuracy is the same in both conventions; mean ± std over {n} runs):",
        "",
        "| model | threshold | accuracy | precision | recall | F1 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in agg.items():
        for pol, *_ in THRESHOLDS:
            lines.append(
                f"| {name} | {pol} | {_pm(s[pol + '|accuracy'], 4)} | "
                f"{_pm(s[pol + '|precision'], 4)} | {_pm(s[pol + '|recall'], 4)} | "
                f"{_pm(s[pol + '|f1'], 4)} |"
            )
    return lines


#: Issue 6's target for the ``recommended`` preset on the seed split (mean over the seeds).
TARGET = {"accuracy": 0.985, "f1": 0.985, "roc_auc": 0.995, "train_seconds": 120.0}


def _shipped_threshold_row() -> str | None:
    # The THRESHOLDS row that is the recommended preset's own threshold.
    th = load_config("recommended").threshold
    for name, policy, params, on in THRESHOLDS:
        shipped_on = "fit" if th.fit_on == "train" else "holdout"
        if policy == th.policy and params == th.params() and on == shipped_on:
            return name
    return None


def _target_section(runs: Sequence[RunResult]) -> list[str]:
    """The ``recommended`` preset as shipped, run by run, against :data:`TARGET`."""
    row = _shipped_threshold_row()
    mine = [r for r in runs if r.name == "recommended"]
    if row is None or not mine:
        return []
    lines = [
        f"## Target: `recommended` as shipped (threshold {row}), seed split",
        "",
        "| seed | accuracy | anomaly F1 | ROC-AUC | train s |",
        "| --- | --- | --- | --- | --- |",
    ]
    got: dict[str, list[float]] = {k: [] for k in TARGET}
    for r in mine:
        vals = {
            "accuracy": r.metrics[row]["accuracy"],
            "f1": r.metrics[row]["f1"],
            "roc_auc": r.roc_auc,
            "train_seconds": r.train_seconds,
        }
        for k, v in vals.items():
            got[k].append(v)
        lines.append(
            f"| {r.seed} | {vals['accuracy']:.4f} | {vals['f1']:.4f} | {vals['roc_auc']:.4f} | "
            f"{vals['train_seconds']:.1f} |"
        )
    mean = {k: float(np.mean(v)) for k, v in got.items()}
    met = {
        k: (mean[k] < TARGET[k]) if k == "train_seconds" else (mean[k] >= TARGET[k]) for k in TARGET
    }
    lines.append(
        f"| **mean** | {mean['accuracy']:.4f} | {mean['f1']:.4f} | {mean['roc_auc']:.4f} | "
        f"{mean['train_seconds']:.1f} |"
    )
    lines.append(
        f"| target | >= {TARGET['accuracy']} | >= {TARGET['f1']} | >= {TARGET['roc_auc']} | "
        f"< {TARGET['train_seconds']:g} |"
    )
    verdict = ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in met.items())
    return [*lines, "", f"Target: {verdict}.", ""]


def hand_written_sections(path: Path) -> list[str]:
    """The hand-written sections of the report at ``path`` (none if there is no file yet).

    Each runs from its ``<!-- hand-written: NAME ... -->`` line to its
    ``<!-- end hand-written: NAME -->`` line, both included; :func:`write_markdown` puts them
    back, verbatim, after the generated part.

    Raises
    ------
    TrainingError
        A section has no end line (regenerating would lose what follows it).
    """
    if not path.is_file():
        return []
    text = path.read_text()
    sections, pos = [], 0
    while begin := _HAND_WRITTEN.search(text, pos):
        end_line = f"<!-- end hand-written: {begin.group(1)} -->"
        stop = text.find(end_line, begin.end())
        if stop < 0:
            raise TrainingError(
                f"{path}: hand-written section {begin.group(1)!r} has no {end_line!r} line; "
                "add it before regenerating the report"
            )
        pos = stop + len(end_line)
        sections.append(text[begin.start() : pos])
    return sections


def _span(values: Sequence[int]) -> str:
    """``1…5`` for a run of consecutive integers, else ``1, 3, 7``."""
    v = sorted(values)
    if len(v) > 2 and v == list(range(v[0], v[-1] + 1)):
        return f"{v[0]}…{v[-1]}"
    return ", ".join(str(x) for x in v)


def _protocol(seeds: Sequence[RunResult], splits: Sequence[RunResult]) -> str:
    """:data:`PROTOCOL` with the other kinds' budget and this report's repetitions."""
    kind_training = f"{KIND_TRAINING['epochs']} epochs of batch {KIND_TRAINING['batch_size']}"
    kind_training += "".join(f", `{kind}` {n} epochs" for kind, n in KIND_EPOCHS.items())
    n_seeds = len({r.seed for r in seeds})
    on_seed_split = (
        f"{n_seeds} seed{'s' if n_seeds != 1 else ''} on the seed's split "
        f"(`random_state = {_span(sorted({r.random_state for r in seeds}))}`)"
    )
    states = sorted({r.random_state for r in splits})
    if states:
        repetitions = (
            f"Two repetitions are aggregated as mean ± std: {on_seed_split}, and "
            f"{len(states)} other splits (`random_state` {_span(states)}) with the config's seed."
        )
    else:
        repetitions = f"Aggregated as mean ± std: {on_seed_split}; no other split."
    return PROTOCOL.format(kind_training=kind_training, repetitions=repetitions)


def _header(result: CompareResult, hand_written: bool) -> list[str]:
    command = "ecgwatch compare" + (" --quick" if result.quick else "")
    keep = (
        ", except its hand-written sections (after the generated part), which regenerating "
        "keeps as they are"
        if hand_written
        else ""
    )
    lines = [
        "# Model quality",
        "",
        f"Generated by `{command}` on {result.source}. Do not edit by hand{keep}.",
        "",
    ]
    if result.quick:
        lines += [QUICK_NOTE, ""]
    return lines


def _repetition_sections(seeds: Sequence[RunResult], splits: Sequence[RunResult]) -> list[str]:
    """The tables of the seed split's seeds, then of the other splits."""
    n_seeds = len({r.seed for r in seeds})
    lines = [
        f"## Seed protocol split (random_state 21), {n_seeds} seeds",
        "",
        *_tables(aggregate(seeds), n_seeds),
        "",
    ]
    if splits:
        states = sorted({r.random_state for r in splits})
        lines += [
            f"## {len(states)} other random splits (random_state "
            f"{', '.join(str(s) for s in states)})",
            "",
            *_tables(aggregate(splits), len(states)),
            "",
        ]
    return lines


def write_markdown(
    result: CompareResult,
    path: Path,
    roc_png: str | None = None,
    robustness_png: str | None = None,
    hand_written: Sequence[str] | None = None,
) -> Path:
    """Write the comparison as markdown (tables: mean ± std over seeds, then over splits).

    ``hand_written`` sections (default: those of the file at ``path``,
    :func:`hand_written_sections`) follow the generated part, verbatim.
    """
    if hand_written is None:
        hand_written = hand_written_sections(path)
    seeds, splits = result.runs["seeds"], result.runs["splits"]
    lines = [
        *_header(result, bool(hand_written)),
        _protocol(seeds, splits),
        "",
        *_target_section(seeds),
        *_repetition_sections(seeds, splits),
        *_robustness_section(seeds, robustness_png),
    ]
    if roc_png:
        lines += ["## ROC curves (first seed, seed split)", "", f"![ROC curves]({roc_png})", ""]
    lines += [CLOSING_NOTE, ""]
    for section in hand_written:
        lines += [section, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def write_roc_plot(result: CompareResult, path: Path) -> Path:
    """ROC curves of the first seed run of every config (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for r in result.runs["seeds"]:
        if r.test_scores is None or r.test_normal is None:
            continue
        fpr, tpr, _ = skm.roc_curve(1 - r.test_normal, r.test_scores)
        ax.plot(fpr, tpr, label=f"{r.name} (AUC {r.roc_auc:.4f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set_xlabel("false-alarm rate (normal beats flagged)")
    ax.set_ylabel("detection rate (abnormal beats flagged)")
    ax.set_title("ROC, seed protocol split, test beats")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


#: Issue 12's robustness target for ``recommended`` (mean over the seeds, every level).
ROBUSTNESS_TARGET = {"false_alarms": 0.03, "detection": 0.97}


def _robustness_means(runs: Sequence[RunResult]) -> dict[str, dict[str, dict[str, float]]]:
    """``name -> level key -> metric -> mean`` over the runs that measured robustness."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in dict.fromkeys(r.name for r in runs if r.robustness):
        group = [r.robustness for r in runs if r.name == name and r.robustness]
        out[name] = {
            k: {m: float(np.mean([g[k][m] for g in group])) for m in group[0][k]} for k in group[0]
        }
    return out


def _robustness_section(runs: Sequence[RunResult], png: str | None) -> list[str]:
    """Every config × perturbation level, and the target check of ``recommended``."""
    means = _robustness_means(runs)
    if not means:
        return []
    n = len({r.seed for r in runs if r.robustness})
    lines = [
        f"## Robustness: perturbed test beats (seed split, mean of {n} seed(s))",
        "",
        ROBUSTNESS_INTRO,
        "",
    ]
    if png:
        lines += [f"![false alarms against strength]({png})", ""]
    lines += [
        "| model | perturbation | strength | false alarms | detection | accuracy | ROC-AUC |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, levels in means.items():
        for k, m in levels.items():
            family, label = k.split("|", 1)
            lines.append(
                f"| {name} | {family} | {label} | {m['false_alarms']:.1%} | "
                f"{m['detection']:.1%} | {m['accuracy']:.4f} | {m['roc_auc']:.4f} |"
            )
    rec = means.get("recommended")
    if rec:
        fa_max, fa_at = max((m["false_alarms"], k) for k, m in rec.items())
        det_min, det_at = min((m["detection"], k) for k, m in rec.items())
        missed = [
            k
            for k, m in rec.items()
            if m["false_alarms"] > ROBUSTNESS_TARGET["false_alarms"]
            or m["detection"] < ROBUSTNESS_TARGET["detection"]
        ]
        lines += [
            "",
            f"Robustness target (`recommended`: false alarms <= "
            f"{ROBUSTNESS_TARGET['false_alarms']:.0%} and detection >= "
            f"{ROBUSTNESS_TARGET['detection']:.0%} at every level): worst false alarms "
            f"{fa_max:.1%} ({fa_at}), worst detection {det_min:.1%} ({det_at}); "
            + (
                "met." if not missed else f"NOT met at {len(missed)} level(s): {', '.join(missed)}."
            ),
        ]
    return [*lines, ""]


def write_robustness_plot(result: CompareResult, path: Path) -> Path | None:
    """False-alarm rate against strength, one panel per perturbation family (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.robustness import FAMILIES, LEVELS, key

    means = _robustness_means(result.runs["seeds"])
    if not means:
        return None
    families = [f for f in FAMILIES if f not in ("none", "combined")]
    fig, axes = plt.subplots(2, (len(families) + 1) // 2, figsize=(13, 6.5), squeeze=False)
    for ax, family in zip(axes.ravel(), families, strict=False):
        levels = sorted(
            [lv for lv in LEVELS if lv.family == family] + [LEVELS[0]],
            key=lambda lv: (
                lv.strength + (1.0 if family in ("gain",) and lv.family == "none" else 0.0)
            ),
        )
        xs = [1.0 if (family == "gain" and lv.family == "none") else lv.strength for lv in levels]
        for name, m in means.items():
            ax.plot(xs, [100 * m[key(lv)]["false_alarms"] for lv in levels], "o-", label=name)
        ax.axhline(100 * ROBUSTNESS_TARGET["false_alarms"], ls=":", c="grey")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_title(family)
        ax.set_xlabel("strength")
        ax.set_ylabel("false alarms, %")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(families) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
