"""Hot model roll-out: a running worker follows the registry's ``latest`` pointer.

Why polling the registry rather than a control message: the registry folder is already what
every worker and the training job share (a volume, a PVC), ``latest`` moves atomically
(``ecgwatch promote`` / ``rollback`` / a training run), and reading one symlink every
``worker.model_poll_s`` seconds costs nothing. A control topic would be a second source of
truth to keep consistent with the folder. A worker started with a fixed ``worker.model_version``
(not ``latest``) never switches.

A new version is verified exactly as at start (checksums, schema, Keras load, backend choice)
plus a smoke score, in this thread, off the event loop; only then is the processor's one model
reference replaced. Every batch takes that reference once, at its start
(:meth:`pipeline.processor.WindowProcessor.compute`), so the switch falls between batches: no
window is lost or scored twice by it, and each record names the version that scored it. A
version that fails is refused: an error log line names the file and the reason,
``ecg_model_reloads_total{outcome="refused"}`` counts it, ``ecg_model_refused`` is 1 while
``latest`` still points at it (the ``EcgModelRefused`` rule), and the old model goes on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.lifecycle import freeze_heap
from pipeline.metrics import PipelineMetrics
from pipeline.processor import WindowProcessor
from pipeline.scorer import Scorer

__all__ = ["ROLLOUT_OUTCOMES", "ModelRollout", "smoke_check"]

log = logging.getLogger(__name__)

#: ``outcome`` label values of ``ecg_model_reloads_total``.
ROLLOUT_OUTCOMES = ("switched", "refused")


def smoke_check(model: Scorer, window_length: int = 140) -> None:
    """Score a fixed synthetic batch; raise ``ValueError`` unless every score is finite.

    Catches what verification cannot: a model that loads but produces NaN or the wrong shape.
    """
    t = np.linspace(0.0, 1.0, window_length, dtype=np.float32)
    beats = np.stack(
        [np.sin(2 * np.pi * k * t) + np.exp(-((t - 0.3) ** 2) / 0.002) for k in (1, 2, 3, 4)]
    ).astype(np.float32)
    scores, anomalous = model.predict(beats)
    scores = np.asarray(scores)
    if scores.shape != (len(beats),) or np.asarray(anomalous).shape != (len(beats),):
        raise ValueError(f"smoke score: {len(beats)} windows gave scores of shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"smoke score: non-finite scores {scores.tolist()}")


class ModelRollout:
    """Poll the registry and switch the processor to the version ``latest`` names.

    Parameters
    ----------
    processor : WindowProcessor
        Its :attr:`~pipeline.processor.WindowProcessor.model` is what gets replaced.
    metrics : PipelineMetrics
        ``ecg_model_info`` / ``ecg_model_threshold`` follow the switch; reloads are counted.
    current : callable
        The version ``latest`` names now (``ModelRegistry.current``).
    load : callable
        ``load(version)``: the verified, backend-ready model, or raises naming the problem.
    poll_s : float
        ``worker.model_poll_s``: seconds between looks at the registry.
    """

    def __init__(
        self,
        processor: WindowProcessor,
        metrics: PipelineMetrics,
        current: Callable[[], str | None],
        load: Callable[[str], Scorer],
        poll_s: float,
    ) -> None:
        self.processor = processor
        self.metrics = metrics
        self.current = current
        self.load = load
        self.poll_s = poll_s
        self.refused: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-rollout", daemon=True)
        for outcome in ROLLOUT_OUTCOMES:
            metrics.model_reloads.labels(outcome)
        metrics.model_refused.set(0)

    def start(self) -> ModelRollout:
        """Start polling in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (a load in progress finishes first)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
            except Exception:  # a registry hiccup must not end the polling
                log.exception("model roll-out: checking the registry failed")

    def check(self) -> str | None:
        """One look at the registry: ``"switched"``, ``"refused"`` or ``None`` (nothing new)."""
        target = self.current()
        served = self.processor.model.version
        if target is None or target == served:
            self._set_refused(None)
            return None
        if target == self.refused:
            return None  # refused already; retried only once latest moves again
        try:
            model = self.load(target)
            smoke_check(model)
        except Exception as exc:
            self._set_refused(target)
            self.metrics.model_reloads.labels("refused").inc()
            log.error(
                "model roll-out: refusing version %s: %s; still serving %s", target, exc, served
            )
            return "refused"
        self._switch(model)
        return "switched"

    def _switch(self, model: Any) -> None:
        old = self.processor.model
        self.processor.model = model  # the next batch takes it; the one running keeps old
        m = self.metrics
        old_kind = getattr(getattr(old, "detector", None), "kind", "")
        new_kind = getattr(getattr(model, "detector", None), "kind", "")
        m.model_info.labels(model.version, new_kind).set(1)
        with contextlib.suppress(KeyError):  # one series per served model, not a history
            m.model_info.remove(old.version, old_kind)
        m.model_threshold.set(float(model.threshold.value))
        m.model_reloads.labels("switched").inc()
        self._set_refused(None)
        freeze_heap()  # the new model's objects, as the first one's at start-up
        print(f"[worker] model switched: {old.version} -> {model.version}", flush=True)

    def _set_refused(self, version: str | None) -> None:
        self.refused = version
        self.metrics.model_refused.set(0 if version is None else 1)
