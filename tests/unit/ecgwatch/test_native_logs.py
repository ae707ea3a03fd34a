"""TensorFlow's native start-up lines are filtered; every other stderr line still shows."""

from __future__ import annotations

import os
import subprocess
import sys

from ecgwatch.native_logs import NOISE

NOISE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1795756128.164463     874 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1795756128.164990     874 cudart_stub.cc:31] Could not find cuda drivers\n",
    "E0000 00:00:1795756133.094419     874 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
]
KEPT_LINES = [
    "E0000 00:00:1795756133.094419     874 some_kernel.cc:12] real native error\n",
    "W0000 00:00:1795756133.094419     874 loader.cc:9] a native warning\n",
    "UserWarning: something Python warned about\n",
]


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120
    )


def test_pattern_drops_only_the_known_start_up_noise() -> None:
    assert all(NOISE.match(line) for line in NOISE_LINES)
    assert not any(NOISE.match(line) for line in KEPT_LINES)


def test_lines_written_to_fd2_are_filtered_and_the_rest_replayed_in_order() -> None:
    # Written with os.write(2, ...) as native code does, bypassing sys.stderr.
    lines = NOISE_LINES[:2] + KEPT_LINES[:1] + NOISE_LINES[2:] + KEPT_LINES[1:]
    code = (
        "import os, sys\n"
        "from ecgwatch.native_logs import captured_fd2\n"
        f"lines = {lines!r}\n"
        "with captured_fd2():\n"
        "    for line in lines: os.write(2, line.encode())\n"
        "print('stderr restored', file=sys.stderr)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "".join(KEPT_LINES) + "stderr restored\n"


def test_importing_tensorflow_through_the_cli_prints_no_start_up_noise() -> None:
    code = (
        "from ecgwatch.native_logs import import_tensorflow_quietly\n"
        "print(import_tensorflow_quietly())\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    assert "absl::InitializeLog" not in proc.stderr
    assert "cuInit" not in proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith("I0000")]


def test_a_user_who_asks_for_every_native_log_line_gets_them() -> None:
    code = (
        "from ecgwatch.native_logs import import_tensorflow_quietly\n"
        "print(import_tensorflow_quietly())\n"
    )
    proc = _run(code, TF_CPP_MIN_LOG_LEVEL="0")
    assert proc.stdout.strip() == "False"


def test_training_under_quiet_training_prints_no_tensorflow_op_definition_error() -> None:
    # Keras builds a tf.data pipeline for fit(); TensorFlow 2.21 then logs an E line about an
    # attribute its own op definition lacks. The same fit outside the filter shows it.
    code = (
        "import sys, numpy as np\n"
        "from ecgwatch.native_logs import import_tensorflow_quietly, quiet_training\n"
        "import_tensorflow_quietly()\n"
        "from detector import AutoencoderDetector, FitOptions\n"
        "x = np.random.default_rng(0).normal(size=(64, 140)).astype('float32')\n"
        "ctx = quiet_training() if sys.argv[1] == 'quiet' else __import__('contextlib')"
        ".nullcontext()\n"
        "with ctx:\n"
        "    opts = FitOptions(epochs=1, batch_size=32)\n"
        "    AutoencoderDetector().fit(x, opts, validation_data=x[:16])\n"
        "print('fitted', file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    runs = {
        mode: subprocess.run(
            [sys.executable, "-c", code, mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )
        for mode in ("quiet", "plain")
    }
    for proc in runs.values():
        assert proc.returncode == 0, proc.stderr
    assert "use_unbounded_threadpool" not in runs["quiet"].stderr
    assert runs["quiet"].stderr.strip().endswith("fitted")
    assert "use_unbounded_threadpool" in runs["plain"].stderr  # the filter is what removes it
