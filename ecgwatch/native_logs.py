"""Keep TensorFlow's native start-up lines off a user's terminal, and nothing else.

``TF_CPP_MIN_LOG_LEVEL`` does not silence the lines TensorFlow's C++ code logs while it is
imported: abseil writes everything logged before ``absl::InitializeLog()`` straight to file
descriptor 2, whatever the threshold (tensorflow/tensorflow#102212, abseil/abseil-cpp#1718).
On a machine without a GPU that is seven lines on every command, one of them an ``E`` line
("failed call to cuInit") that looks like a failure and is not one.

:func:`import_tensorflow_quietly` imports TensorFlow (and lets it enumerate devices) with
descriptor 2 redirected to a temporary file, then writes back every captured line except
the known start-up noise (:data:`NOISE`). Real errors and Python warnings raised during the
import still reach the terminal.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["NOISE", "TRAINING_NOISE", "captured_fd2", "import_tensorflow_quietly", "quiet_training"]

#: Lines dropped: abseil's pre-initialisation banner, native INFO lines (``I0000 ...``) and
#: the cuInit failure that only says "this machine has no usable GPU".
NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|I\d{4} [\d:. ]+\s+\d+ \S+:\d+\]"
    r"|E\d{4} [\d:. ]+\s+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"
)

#: Also dropped while a model trains: TensorFlow 2.21's Python side passes an attribute
#: (``use_unbounded_threadpool``) that its own C++ op definition lacks, and logs an ``E`` line
#: saying it is ignored whenever Keras builds its input pipeline.
TRAINING_NOISE = re.compile(
    NOISE.pattern + r"|E\d{4} [\d:. ]+\s+\d+ node_def_util\.cc:\d+\] NodeDef mentions "
    r"attribute use_unbounded_threadpool"
)


def _user_wants_every_line() -> bool:
    # TF_CPP_MIN_LOG_LEVEL=0 set by the user: they asked for all native log output.
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "") == "0"


@contextlib.contextmanager
def captured_fd2(drop: re.Pattern[str] = NOISE) -> Iterator[None]:
    """Redirect file descriptor 2 while the block runs; re-emit lines ``drop`` does not match.

    Parameters
    ----------
    drop : re.Pattern
        Lines whose beginning matches are discarded.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [
                line
                for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not drop.match(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow_quietly() -> bool:
    """Import TensorFlow and initialise its devices with the start-up noise filtered out.

    Does nothing (returns False) when Keras is set to another backend, when TensorFlow is not
    installed, or when the user set ``TF_CPP_MIN_LOG_LEVEL`` to 0 (they asked for everything).

    Returns
    -------
    bool
        Whether TensorFlow was imported here.
    """
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return False
    if _user_wants_every_line():
        return False
    try:
        with captured_fd2():
            import tensorflow as tf

            # Device enumeration is where the cuInit line comes from; do it now, captured.
            tf.config.list_physical_devices()
    except ImportError:
        return False
    return True


def quiet_training() -> contextlib.AbstractContextManager[None]:
    """:func:`captured_fd2` with :data:`TRAINING_NOISE`: wrap a training run (batch jobs
    only; their stderr is held back until the block ends, stdout is not)."""
    if _user_wants_every_line():
        return contextlib.nullcontext()
    return captured_fd2(TRAINING_NOISE)
