"""What the commands print: no TensorFlow/absl start-up noise, log-file-friendly
progress, and report text that speaks of the model (issue #22 item 6)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from lmuformer_keras import console
from lmuformer_keras.features.progress import Progress

# Start-up and converter lines a user should not see on stderr.
NOISE_MARKERS = (
    "absl",
    "I0000",
    "W0000",
    "oneDNN",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized",
    "fully_quantize",
    "XNNPACK",
    "UserWarning",
    "trackable_obj",
    "Statistics for quantized inputs",
)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_writes_no_carriage_return_when_not_a_tty():
    stream = io.StringIO()
    bar = Progress(1000, "features[test]", stream=stream)
    for done in range(1001):
        bar.update(done)
    text = stream.getvalue()
    assert "\r" not in text
    assert text.splitlines()[-1].startswith("features[test] 1000/1000 ")
    assert text.count("\n") <= 11  # a few lines, not one per update


def test_progress_redraws_in_place_on_a_tty():
    stream = _Terminal()
    bar = Progress(3, "read[train]", stream=stream)
    for done in range(4):
        bar.update(done)
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n")


def test_keras_verbose_is_one_line_per_epoch_in_a_log_file(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert console.keras_verbose(None) == 2
    assert console.keras_verbose("auto") == 2
    assert console.keras_verbose(1) == 1
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert console.keras_verbose(None) == 1


def test_filtered_stderr_drops_runtime_noise_and_keeps_the_rest(capfd):
    with console.filtered_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: 9\n")
        os.write(2, b"a real error detail\n")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err and "fully_quantize" not in err
    assert "a real error detail" in err


def test_filtered_stderr_keeps_the_details_when_the_block_raises(capfd):
    with pytest.raises(RuntimeError), console.filtered_stderr():
        os.write(2, b"why it failed\n")
        raise RuntimeError("boom")
    assert "why it failed" in capfd.readouterr().err


def _report(agreement: float) -> dict:
    lite = {
        "clips": 100,
        "agreement_with_float": agreement,
        "accuracy": 0.95,
        "accuracy_drop_points": 0.2,
    }
    return {
        "quantization": "int8",
        "model_bytes": 1000,
        "arena_bytes_min": 2000,
        "arena_bytes": 2512,
        "macs_per_frame": 300,
        "ops": ["ADD"],
        "states": [],
        "verification": {"float": {"accuracy": 0.952}, "litert": lite},
    }


def test_report_text_speaks_of_the_model_not_of_goals():
    from lmuformer_export.report import format_report, goals

    report = _report(0.979)
    report["goals"] = goals(report["verification"], "int8")
    text = format_report(report, "out/", clips="test")
    assert "int8 agrees with float on 97.9% of 100 test clips" in text
    assert "agrees with float on only 97.9% of clips (target 99%)" in text
    assert "GOALS" not in text and "litert_agreement_ge_99pct" not in text

    report = _report(1.0)
    report["goals"] = goals(report["verification"], "int8")
    assert "Below target" not in format_report(report, "out/")


def test_train_cli_uses_one_line_per_epoch_when_stdout_is_not_a_tty(
    tmp_path, monkeypatch
):
    pytest.importorskip("keras")
    from lmuformer_keras.training import cli
    from lmuformer_keras.training.run_plan import plan_run

    cli.FLAGS.unparse_flags()
    cli.FLAGS(["lmuformer-train", "--dataset=digits", f"--out={tmp_path / 'run'}"])
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert plan_run(cli._flag_values()).verbose == 2
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["lmuformer-train", "--dataset=digits", "--verbose=1"])
    assert plan_run(cli._flag_values()).verbose == 1
    cli.FLAGS.unparse_flags()


def test_export_cli_stderr_holds_no_tensorflow_or_absl_lines(tmp_path):
    pytest.importorskip("tensorflow")
    import numpy as np

    from export_fixtures import build_lmuformer, make_sign_task

    x, y = make_sign_task(8, seed=3)
    build_lmuformer().save(str(tmp_path / "model.keras"))
    np.savez(tmp_path / "cal.npz", x=x, y=y)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI must quiet TensorFlow itself
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmuformer_export.cli",
            f"--model={tmp_path / 'model.keras'}",
            f"--calibration={tmp_path / 'cal.npz'}",
            f"--out={tmp_path / 'out'}",
            "--max_calibration_samples=50",
            "--max_clips=4",
            "--max_tflm_clips=2",
            "--divergence_clips=0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = [m for m in NOISE_MARKERS if m in result.stderr]
    assert not found, f"stderr holds {found}:\n{result.stderr[-3000:]}"
    assert "int8 agrees with float on" in result.stdout
    assert "\r" not in result.stdout + result.stderr
