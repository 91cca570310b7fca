"""``lmuformer-train`` fails clearly and loses nothing (issue #22, item 5).

Tiny ``digits`` runs (40 clips per split, a 731-parameter model, one epoch), called
in process through ``cli.main`` as in ``test_training.py``.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from lmuformer_keras.training import cli, outdir

PROG = "lmuformer-train"
TINY = [
    "--dataset=digits",
    "--max_clips=40",
    "--batch_size=8",
    "--verbose=0",
    "--streaming_clips=4",
    "--calibration_clips=4",
    "--max_test_clips=10",
    "--override=dim=8",
    "--override=order=8",
    "--override=mlp_ratio=1",
    "--override=num_patch_layers=1",
]


def _args(out, *extra):
    return [PROG, *TINY, f"--out={out}", *extra]


def _sha(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _state(out):
    with open(os.path.join(out, "resume", "state.json")) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("trained") / "out")
    assert cli.main(_args(out, "--epochs=1")) == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    out = str(tmp_path / "copy")
    shutil.copytree(trained, out)
    return out


def test_checkpoint_is_one_unit(trained):
    state = _state(trained)
    assert state["epochs_completed"] == 1
    assert state["weights_file"] == "epoch-0001.weights.h5"
    weights = os.path.join(trained, "resume", state["weights_file"])
    assert state["weights_sha256"] == _sha(weights)
    assert sorted(os.listdir(os.path.join(trained, "resume"))) == [
        "epoch-0001.weights.h5",
        "state.json",
    ]
    assert not os.path.exists(os.path.join(trained, outdir.LOCK_FILE))


def test_out_with_a_run_is_kept_unless_resume_or_overwrite(run_copy, capsys):
    out = run_copy
    before = {n: _sha(os.path.join(out, n)) for n in ("model.keras", "history.csv")}
    assert cli.main(_args(out, "--epochs=1")) == 2
    err = capsys.readouterr().err
    assert f"--out={out!r} already holds a training run" in err
    assert "model.keras" in err and "--resume" in err and "--overwrite" in err
    after = {n: _sha(os.path.join(out, n)) for n in before}
    assert after == before
    assert cli.main(_args(out, "--resume", "--overwrite")) == 2
    assert "--resume and --overwrite contradict" in capsys.readouterr().err
    # --overwrite replaces the run (and its checkpoint) with a new one
    assert cli.main(_args(out, "--epochs=1", "--seed=3", "--overwrite")) == 0
    assert "--overwrite: removed" in capsys.readouterr().out
    assert _state(out)["config"]["seed"] == 3
    with open(os.path.join(out, "metrics.json")) as fh:
        assert json.load(fh)["config"]["flags"]["seed"] == 3


def test_out_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    assert cli.main(_args(str(path))) == 2
    err = capsys.readouterr().err
    assert f"--out={str(path)!r} is an existing file" in err
    assert path.read_text() == "not a folder"


def test_second_run_on_a_locked_out_is_refused(tmp_path, capsys):
    out = tmp_path / "locked"
    out.mkdir()
    lock = out / outdir.LOCK_FILE
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{holder.pid}\n")
        assert cli.main(_args(str(out), "--epochs=1")) == 1
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and str(lock) in err
        assert lock.read_text().strip() == str(holder.pid)  # not taken
        assert not (out / "model.keras").exists()
    finally:
        holder.kill()
        holder.wait()
    # its process is gone: the stale lock is taken over, and released at the end;
    # a batch far beyond the 40 training clips is lowered to 40, with a note
    assert cli.main(_args(str(out), "--epochs=1", "--batch_size=100000")) == 0
    captured = capsys.readouterr().out
    assert "--batch_size=100000 exceeds the 40 training clips" in captured
    assert _state(str(out))["config"]["batch_size"] == 40
    assert not lock.exists()


def test_lock_is_released_on_error(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(_args(str(out), "--override=nosuch=1")) == 2  # fails when locked
    assert "nosuch" in capsys.readouterr().err
    assert out.is_dir() and not (out / outdir.LOCK_FILE).exists()


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("learning_rate", "nan"),
        ("learning_rate", "inf"),
        ("learning_rate", "0"),
        ("learning_rate", "-0.1"),
        ("epochs", "0"),
        ("batch_size", "-1"),
        ("distill_temperature", "inf"),
        ("streaming_tolerance", "nan"),
        ("max_clips", "-5"),
        ("streaming_clips", "-1"),
        ("seed", "-1"),
        ("verbose", "7"),
        ("freq_shift", "-2"),
        ("equalizer", "nan"),
    ],
)
def test_meaningless_numbers_name_the_flag_and_value(tmp_path, capsys, flag, value):
    out = tmp_path / "o"
    assert cli.main([*_args(str(out)), f"--{flag}={value}"]) == 2
    err = capsys.readouterr().err
    assert f"--{flag}=" in err and value.lstrip("-") in err, err
    assert not out.exists()  # refused before anything is written


def test_unknown_keras_backend(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "o")
    monkeypatch.setenv("KERAS_BACKEND", "nosuch")
    assert cli.main(_args(out)) == 2
    err = capsys.readouterr().err.strip()
    assert "KERAS_BACKEND='nosuch'" in err and "jax" in err and "\n" not in err
    # as a command: one line, no traceback (Keras is never imported)
    env = dict(os.environ, KERAS_BACKEND="nosuch")
    cmd = [sys.executable, "-m", "lmuformer_keras.training.cli", *_args(out)[1:]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "KERAS_BACKEND='nosuch' is not a Keras backend" in proc.stderr


def test_resume_from_a_damaged_checkpoint_names_the_file(run_copy, capsys):
    out = run_copy
    state_path = os.path.join(out, "resume", "state.json")
    with open(state_path) as fh:
        good = fh.read()
    with open(state_path, "w") as fh:
        fh.write(good[: len(good) // 2])  # truncated
    assert cli.main(_args(out, "--epochs=2", "--resume")) == 1
    err = capsys.readouterr().err
    assert f"checkpoint state {state_path!r} is damaged" in err
    with open(state_path, "w") as fh:
        json.dump({"history": []}, fh)  # valid JSON, no epochs_completed
    assert cli.main(_args(out, "--epochs=2", "--resume")) == 1
    assert "epochs_completed" in capsys.readouterr().err
    with open(state_path, "w") as fh:
        fh.write(good)
    weights = os.path.join(out, "resume", "epoch-0001.weights.h5")
    with open(weights, "rb") as fh:
        data = fh.read()
    with open(weights, "wb") as fh:
        fh.write(data[: len(data) // 2])  # truncated: the checksum differs
    assert cli.main(_args(out, "--epochs=2", "--resume")) == 1
    err = capsys.readouterr().err
    assert f"weights {weights!r} do not match the checksum" in err
    # an old-layout checkpoint (no name, no checksum) with truncated weights
    legacy = json.loads(good)
    del legacy["weights_file"], legacy["weights_sha256"]
    with open(state_path, "w") as fh:
        json.dump(legacy, fh)
    old = os.path.join(out, "resume", "last.weights.h5")
    os.replace(weights, old)
    assert cli.main(_args(out, "--epochs=2", "--resume")) == 1
    assert f"cannot load the checkpoint weights {old!r}" in capsys.readouterr().err
    os.remove(old)
    assert cli.main(_args(out, "--epochs=2", "--resume")) == 1
    assert f"weights {old!r} named by" in capsys.readouterr().err
    assert os.path.getsize(os.path.join(out, "model.keras")) > 0  # nothing lost


def test_old_checkpoints_resume_and_half_written_epochs_are_ignored(run_copy):
    out = run_copy
    resume = os.path.join(out, "resume")
    state = _state(out)
    os.replace(
        os.path.join(resume, state.pop("weights_file")),
        os.path.join(resume, "last.weights.h5"),
    )
    del state["weights_sha256"]
    with open(os.path.join(resume, "state.json"), "w") as fh:
        json.dump(state, fh)  # the layout before weights_file / weights_sha256
    # a run killed after writing epoch 2's weights, before its state.json
    with open(os.path.join(resume, "epoch-0002.weights.h5"), "wb") as fh:
        fh.write(b"half-written")
    assert cli.main(_args(out, "--epochs=2", "--resume")) == 0
    state = _state(out)
    assert state["epochs_completed"] == 2 and len(state["history"]) == 2
    assert sorted(os.listdir(resume)) == ["epoch-0002.weights.h5", "state.json"]
    assert state["weights_sha256"] == _sha(os.path.join(resume, state["weights_file"]))


def test_bad_teacher_file_names_the_file(tmp_path, capsys):
    out = str(tmp_path / "student")
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    assert cli.main(_args(out, f"--teacher={text}")) == 2
    err = capsys.readouterr().err
    assert f"--teacher {str(text)!r}: not a loadable Keras model" in err


def test_truncated_teacher_names_the_file(trained, tmp_path, capsys):
    with open(os.path.join(trained, "model.keras"), "rb") as fh:
        data = fh.read()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) // 2])
    out = str(tmp_path / "student")
    assert cli.main(_args(out, f"--teacher={cut}")) == 2
    assert f"--teacher {str(cut)!r}: not a loadable" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "model.keras"))
