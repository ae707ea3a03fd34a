"""Detection metrics in both conventions: normal-positive (the seed) and anomaly-positive."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = ["detection_metrics"]


def detection_metrics(scores: np.ndarray, normal: np.ndarray, threshold: float) -> dict[str, Any]:
    """Metrics of the decision ``anomalous = score > threshold`` against labels.

    Parameters
    ----------
    scores : ndarray, shape (n,)
        Reconstruction errors.
    normal : ndarray, shape (n,)
        1 for a normal beat, 0 for an abnormal one.
    threshold : float
        The decision threshold.

    Returns
    -------
    dict
        ``normal_positive.{accuracy,precision,recall}`` (the seed's convention),
        ``anomaly_positive.{precision,recall,f1,roc_auc,pr_auc,confusion_matrix}``,
        ``threshold`` and counts.
    """
    scores = np.asarray(scores, dtype=np.float64)
    y_normal = np.asarray(normal).astype(int)
    pred_anomaly = (scores > threshold).astype(int)
    y_anomaly = 1 - y_normal
    pred_normal = 1 - pred_anomaly
    tn, fp, fn, tp = skm.confusion_matrix(y_anomaly, pred_anomaly, labels=[0, 1]).ravel()
    both = len(np.unique(y_anomaly)) == 2
    return {
        "threshold": float(threshold),
        "n": len(scores),
        "n_abnormal": int(y_anomaly.sum()),
        "normal_positive": {
            "accuracy": float(skm.accuracy_score(y_normal, pred_normal)),
            "precision": float(skm.precision_score(y_normal, pred_normal, zero_division=0)),
            "recall": float(skm.recall_score(y_normal, pred_normal, zero_division=0)),
        },
        "anomaly_positive": {
            "accuracy": float(skm.accuracy_score(y_anomaly, pred_anomaly)),
            "precision": float(skm.precision_score(y_anomaly, pred_anomaly, zero_division=0)),
            "recall": float(skm.recall_score(y_anomaly, pred_anomaly, zero_division=0)),
            "f1": float(skm.f1_score(y_anomaly, pred_anomaly, zero_division=0)),
            "roc_auc": float(skm.roc_auc_score(y_anomaly, scores)) if both else float("nan"),
            "pr_auc": float(skm.average_precision_score(y_anomaly, scores))
            if both
            else float("nan"),
            "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        },
    }
