"""lmuformer-train: CLI smoke run, resume, data parallel, bad flags, helpers."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from lmuformer_keras.data import LABELS_12, generate_synthetic_kws
from lmuformer_keras.data.speech_commands import COMMAND_WORDS
from lmuformer_keras.features import get_frontend
from lmuformer_keras.training import cli
from lmuformer_keras.training.datasets import default_preset
from lmuformer_keras.training.pipeline import TrainBatches, distill_targets
from lmuformer_keras.training.recipes import get_recipe
from lmuformer_keras.training.streaming_eval import (
    StreamingMismatchError,
    accuracy_vs_frames,
    check_verified,
    frames_within,
    prefix_mean,
)

BACKEND = keras.backend.backend()
PROG = "lmuformer-train"
TINY_MODEL = [
    "--override=dim=8",
    "--override=order=8",
    "--override=mlp_ratio=1",
    "--override=num_patch_layers=1",
]


@pytest.fixture(scope="module")
def tiny_kws(tmp_path_factory):
    """A tiny synthetic set with the 12-class words (11 words, 4 voices)."""
    root = str(tmp_path_factory.mktemp("kws") / "data")
    generate_synthetic_kws(
        root,
        words=(*COMMAND_WORDS, "cat"),
        train_voices=("en-us+m1", "en+f1"),
        val_voices=("en-us+m3",),
        test_voices=("en-gb-x-rp+f4",),
        noise_seconds=2.0,
        engines=("espeak",),
        negative_words=0,
        negative_sentences=0,
        progress=False,
    )
    return root


def _kws_args(data_dir, out, *extra):
    return [
        PROG,
        "--dataset=speech_commands",
        f"--data_dir={data_dir}",
        "--classes=12",
        "--batch_size=8",
        f"--out={out}",
        "--verbose=0",
        "--streaming_clips=6",
        "--calibration_clips=5",
        *TINY_MODEL,
        *extra,
    ]


@pytest.fixture(scope="module")
def smoke(tiny_kws, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run") / "out")
    with pytest.MonkeyPatch.context() as mp:  # feature cache in a temporary folder
        mp.setenv("LMUFORMER_KERAS_CACHE", str(tmp_path_factory.mktemp("cache")))
        assert cli.main(_kws_args(tiny_kws, out, "--epochs=1")) == 0
        yield tiny_kws, out


def test_cli_smoke_writes_every_output(smoke):
    _, out = smoke
    for name in (
        "model.keras",
        "history.csv",
        "curves.png",
        "metrics.json",
        "streaming_accuracy.json",
        "streaming_accuracy.png",
        "calibration.npz",
        "test.npz",
    ):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, "metrics.json")) as fh:
        metrics = json.load(fh)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert np.isfinite(metrics["test_loss"])
    assert metrics["trainable_params"] > 0
    config = metrics["config"]
    for key in ("preset", "overrides", "flags", "backend", "dataset"):
        assert key in config, key
    assert config["preset"] == "lmuformer_tiny_kws"  # the natural preset
    assert config["overrides"]["dim"] == 8
    assert config["backend"] == BACKEND
    assert config["dataset"]["sizes"]["train"] == 24
    with open(os.path.join(out, "streaming_accuracy.json")) as fh:
        stream = json.load(fh)
    assert stream["num_frames"] == 49 and len(stream["accuracy"]) == 49
    assert stream["streamed_clips"] == 6 and stream["parallel_clips"] == 6
    assert stream["max_abs_diff_streaming_vs_parallel"] <= 1e-4
    assert stream["verified"] and metrics["streaming"]["verified"]
    assert stream["accuracy"][-1] == pytest.approx(metrics["test_accuracy"])
    assert 1 <= stream["frames_within_1_point"] <= 49
    # the saved model records the dataset's labels and frontend
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    assert model.labels == list(LABELS_12)
    fe = get_frontend("micro40")
    assert model.frontend["name"] == "micro40"
    assert model.frontend["params"] == fe.params
    assert model.num_frames == 49 and model.num_features == 40
    for name, n in (("calibration.npz", 5), ("test.npz", 12)):
        with np.load(os.path.join(out, name)) as data:
            assert data["x"].shape == (n, 49, 40) and data["x"].dtype == np.float32
            assert data["y"].shape == (n,)
            assert list(data["labels"]) == list(LABELS_12)


def _losses(out):
    with open(os.path.join(out, "history.csv")) as fh:
        rows = fh.read().strip().splitlines()
    assert rows[0].startswith("epoch,learning_rate,")
    col = rows[0].split(",").index("loss")
    return [float(r.split(",")[col]) for r in rows[1:]]


def test_resume_continues_like_an_uninterrupted_run(smoke, tmp_path, capsys):
    data_dir, out = smoke
    assert cli.main(_kws_args(data_dir, out, "--epochs=2", "--resume")) == 0
    with open(os.path.join(out, "metrics.json")) as fh:
        metrics = json.load(fh)
    assert metrics["resumed_from_epoch"] == 1
    assert metrics["epochs_completed"] == 2
    straight = str(tmp_path / "straight")
    assert cli.main(_kws_args(data_dir, straight, "--epochs=2")) == 0
    np.testing.assert_allclose(_losses(out), _losses(straight), rtol=1e-5)
    # another configuration cannot resume from this checkpoint
    args = _kws_args(data_dir, out, "--epochs=3", "--resume", "--learning_rate=0.01")
    assert cli.main(args) == 1
    assert "differs in ['learning_rate']" in capsys.readouterr().err


def test_mixed_bfloat16_training_saves_a_float32_model(smoke, tmp_path, capsys):
    data_dir, _ = smoke
    out = str(tmp_path / "mixed")
    args = _kws_args(data_dir, out, "--epochs=1", "--dtype_policy=mixed_bfloat16")
    assert cli.main(args) == 0
    assert "dtype policy mixed_bfloat16" in capsys.readouterr().out
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    assert {layer.dtype_policy.name for layer in model._flatten_layers()} == {"float32"}
    with open(os.path.join(out, "metrics.json")) as fh:
        metrics = json.load(fh)
    assert metrics["config"]["flags"]["dtype_policy"] == "mixed_bfloat16"
    assert metrics["streaming"]["verified"]
    # resuming it in float32 is another configuration; in bfloat16 it continues
    args = _kws_args(data_dir, out, "--epochs=2", "--resume")
    assert cli.main(args) == 1
    assert "differs in ['dtype_policy']" in capsys.readouterr().err
    assert cli.main([*args, "--dtype_policy=mixed_bfloat16"]) == 0
    with open(os.path.join(out, "metrics.json")) as fh:
        metrics = json.load(fh)
    assert metrics["resumed_from_epoch"] == 1 and metrics["epochs_completed"] == 2
    # the dtype policy is a flag, not a preset override
    args = _kws_args(data_dir, out, "--override=dtype='mixed_bfloat16'")
    assert cli.main(args) == 2
    assert "--dtype_policy" in capsys.readouterr().err


def test_bad_flags_name_the_flag_and_value(tmp_path, capsys):
    out = str(tmp_path / "o")
    assert cli.main([PROG, "--preset=nosuch_preset", f"--out={out}"]) == 2
    err = capsys.readouterr().err
    assert "--preset" in err and "nosuch_preset" in err
    assert cli.main([PROG, "--dataset=nosuch_data", f"--out={out}"]) == 2
    err = capsys.readouterr().err
    assert "--dataset" in err and "nosuch_data" in err
    missing = str(tmp_path / "no_speech_commands_here")
    args = [PROG, "--dataset=speech_commands", f"--data_dir={missing}", f"--out={out}"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "--data_dir" in err and missing in err
    assert cli.main([PROG, "--dataset=speech_commands", f"--out={out}"]) == 1
    assert "--data_dir is required" in capsys.readouterr().err
    assert cli.main([PROG, "--dataset=digits", "--override=dim", f"--out={out}"]) == 2
    assert "--override must be NAME=VALUE" in capsys.readouterr().err
    args = [PROG, "--dataset=digits", "--override=nosuch=1", f"--out={out}"]
    assert cli.main(args) == 2
    assert "nosuch" in capsys.readouterr().err
    args = [PROG, "--dataset=kws_streams", "--clip_context=0.5", f"--out={out}"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert (
        "--clip_context works with --dataset=kws_clips, got --dataset=kws_streams"
        in err
    )
    args = [PROG, "--dataset=kws_clips", "--clip_context=1.5", f"--out={out}"]
    assert cli.main(args) == 2
    assert "--clip_context must be in [0, 1], got 1.5" in capsys.readouterr().err


_DISTRIBUTED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras
    from lmuformer_keras.data import digits
    from lmuformer_keras.training import distribute, trainer
    from lmuformer_keras.training.datasets import subset
    from lmuformer_keras.training.recipes import get_recipe

    assert len(keras.distribution.list_devices()) == 2
    ds = subset(digits(), 32)
    losses = {}
    for mode in ("none", "data_parallel"):
        keras.utils.set_random_seed(0)
        info = distribute.setup_distribution(mode, 16)
        model = trainer.build_model(
            "lmuformer_digits", ds,
            {"dim": 8, "order": 8, "mlp_ratio": 1, "num_patch_layers": 1},
        )
        result = trainer.train(
            model, ds, get_recipe("default"), sys.argv[1] + "/" + mode,
            epochs=2, batch_size=16, learning_rate=2e-3, seed=0, augment=True,
            verbose=0,
        )
        distribute.clear_distribution()
        losses[mode] = {
            "devices": info["devices"],
            "loss": [r["loss"] for r in result["history"]],
            "val_loss": [r["val_loss"] for r in result["history"]],
        }
    print("RESULT " + json.dumps(losses))
    """
)


def test_distribute_data_parallel(tmp_path, capsys):
    if BACKEND != "jax":
        out = str(tmp_path / "o")
        args = [PROG, "--dataset=digits", "--distribute=data_parallel", f"--out={out}"]
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert "--distribute=data_parallel" in err and BACKEND in err
        return
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _DISTRIBUTED_SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    one, two = result["none"], result["data_parallel"]
    assert (one["devices"], two["devices"]) == (1, 2)
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=1e-3, atol=1e-4)


def test_natural_presets():
    assert default_preset("synthetic_kws", 12) == "lmuformer_tiny_kws"
    assert default_preset("speech_commands", 12) == "lmuformer_tiny_kws"
    assert default_preset("speech_commands", 35) == "lmuformer_scv2"
    for name in ("mnist1d", "digits", "psmnist"):
        assert default_preset(name) == f"lmuformer_{name}"


def test_paper_recipe():
    recipe = get_recipe("paper_scv2")
    assert (recipe.epochs, recipe.batch_size) == (200, 128)
    assert recipe.learning_rate == 2.5e-3
    assert (recipe.beta_1, recipe.beta_2, recipe.loss) == (0.95, 0.999, "bce")
    assert recipe.lr_factor(9, 200) == 1.0
    assert recipe.lr_factor(10, 200) == pytest.approx(0.85)
    assert recipe.lr_factor(199, 200) == pytest.approx(0.85**19)
    assert recipe.augments(audio=False)
    default = get_recipe("default")
    assert default.augments(audio=True) and not default.augments(audio=False)
    with pytest.raises(ValueError, match="--recipe: unknown recipe 'x'"):
        get_recipe("x")


def test_train_batches_deterministic_per_epoch_and_batch():
    from lmuformer_keras.data import FeatureAugmenter

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 8, 4)).astype(np.float32)
    y = rng.integers(0, 3, 20)

    def make():
        aug = FeatureAugmenter(8, 4, 3, seed=123)
        return TrainBatches(x, y, 3, 6, seed=5, augmenter=aug)

    a, b = make(), make()
    assert len(a) == 3  # incomplete last batch dropped
    b.set_epoch(1)
    xb1 = b[2][0]
    b.set_epoch(0)
    for i in (2, 0, 1):  # any order, same batches
        np.testing.assert_array_equal(a[i][0], b[i][0])
        np.testing.assert_array_equal(a[i][1], b[i][1])
    a.set_epoch(1)
    np.testing.assert_array_equal(a[2][0], xb1)
    assert a[0][1].shape == (6, 3)


def test_distill_targets_and_teacher_batches():
    labels = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    got = distill_targets(labels, logits, weight=0.25, temperature=2.0)
    soft0 = np.exp([1.0, 0.0, 0.0]) / np.exp([1.0, 0.0, 0.0]).sum()
    np.testing.assert_allclose(got[0], 0.75 * labels[0] + 0.25 * soft0, rtol=1e-6)
    np.testing.assert_allclose(got[1], 0.75 * labels[1] + 0.25 / 3, rtol=1e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(distill_targets(labels, logits, 0.0, 1.0), labels)
    # the teacher sees exactly the (augmented) batch the student trains on
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 5, 3)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    seen = []

    def teacher(xb):
        seen.append(xb.copy())
        return np.tile([5.0, 0.0, 0.0], (len(xb), 1))

    plain = TrainBatches(x, y, 3, 4, seed=1)
    taught = TrainBatches(x, y, 3, 4, seed=1, teacher=teacher, distill_weight=1.0)
    xb, yb = taught[1]
    np.testing.assert_array_equal(seen[-1], xb)
    np.testing.assert_array_equal(xb, plain[1][0])
    np.testing.assert_allclose(yb, distill_targets(plain[1][1], teacher(xb), 1, 2))
    assert (yb.argmax(-1) == 0).all() and not (plain[1][1].argmax(-1) == 0).all()
    for kwargs, name in (
        ({"distill_weight": 1.5}, "distill_weight"),
        ({"distill_temperature": 0.0}, "distill_temperature"),
    ):
        with pytest.raises(ValueError, match=name):
            TrainBatches(x, y, 3, 4, seed=1, teacher=teacher, **kwargs)


def test_cli_distills_from_a_teacher(smoke, tmp_path, capsys):
    data_dir, out = smoke
    student = str(tmp_path / "student")
    teacher = os.path.join(out, "model.keras")
    args = _kws_args(data_dir, student, "--epochs=1", f"--teacher={teacher}")
    flags = ["--spiking", "--distill_weight=0.7", "--mixup_prob=0.5"]
    assert cli.main(args + flags + ["--reversed_unknown=0.5"]) == 0
    with open(os.path.join(student, "metrics.json")) as fh:
        metrics = json.load(fh)
    assert metrics["config"]["recipe"]["reversed_unknown"] == 0.5
    distill = metrics["config"]["distill"]
    assert distill["weight"] == 0.7 and distill["temperature"] == 2.0
    assert metrics["config"]["recipe"]["mixup_prob"] == 0.5
    assert distill["teacher"] == os.path.abspath(teacher)
    # a teacher for other data, a missing file, bad weights: clear errors
    assert cli.main(_kws_args(data_dir, student, f"--teacher={student}.x")) == 2
    assert "--teacher: no such file" in capsys.readouterr().err
    other = str(tmp_path / "other.keras")
    from lmuformer_keras.models import LMUFormer

    LMUFormer.from_preset("lmuformer_digits", dim=8, order=8).save(other)
    assert cli.main(_kws_args(data_dir, student, f"--teacher={other}")) == 2
    err = capsys.readouterr().err
    assert "--teacher" in err and "1 input features, the dataset has 40" in err
    args = _kws_args(data_dir, student, f"--teacher={teacher}", "--distill_weight=2")
    assert cli.main(args) == 2
    assert "--distill_weight must be in [0, 1]" in capsys.readouterr().err
    assert cli.main(_kws_args(data_dir, student, "--mixup_prob=1.5")) == 2
    assert "--mixup_prob must be in [0, 1], got --mixup_prob=1.5" in (
        capsys.readouterr().err
    )
    assert cli.main(_kws_args(data_dir, student, "--reversed_unknown=-0.1")) == 2
    assert "--reversed_unknown must be in [0, 1], got --reversed_unknown=-0.1" in (
        capsys.readouterr().err
    )


def test_prefix_mean_accuracy():
    # clip 0: class 1 wins from frame 2 on; clip 1: class 0 all along
    fl = np.zeros((2, 4, 2), np.float32)
    fl[0, 0] = [1, 0]
    fl[0, 1:] = [0, 3]
    fl[1, :] = [1, 0]
    np.testing.assert_allclose(prefix_mean(fl)[0, 1], [0.5, 1.5])
    acc = accuracy_vs_frames(fl, np.array([1, 0]))
    np.testing.assert_allclose(acc, [0.5, 1.0, 1.0, 1.0])
    assert frames_within(acc, 1.0) == 2
    assert frames_within(np.array([0.9, 0.2, 0.995, 1.0]), 1.0) == 3
    bad = {
        "verified": False,
        "max_abs_diff_streaming_vs_parallel": 0.01,
        "tolerance": 1e-4,
        "clips_over_tolerance": 8,
        "streamed_clips": 8,
        "streamed_decisions_agree": 1.0,
    }
    with pytest.raises(StreamingMismatchError, match="differ .* by 0.01 > tolerance"):
        check_verified(bad)
    # a spiking model may flip a near-threshold spike on <= 1% of clips (float
    # rounding of the two memory forms); a non-spiking one never differs
    from types import SimpleNamespace

    from lmuformer_keras.training.streaming_eval import _verified

    plain, spiking = SimpleNamespace(spiking=False), SimpleNamespace(spiking=True)
    assert _verified(plain, 0, 256, 1.0) and not _verified(plain, 1, 256, 1.0)
    assert _verified(spiking, 2, 256, 1.0) and not _verified(spiking, 3, 256, 1.0)
    assert not _verified(spiking, 1, 256, 0.98)


def test_synthetic_kws_uses_an_existing_set_as_is(tiny_kws, tmp_path, monkeypatch):
    from lmuformer_keras.training import datasets

    monkeypatch.setenv("LMUFORMER_KERAS_CACHE", str(tmp_path))
    before = os.path.getmtime(os.path.join(tiny_kws, "synthetic_kws_manifest.json"))
    ds = datasets.load_dataset("synthetic_kws", tiny_kws, 12, "micro40", progress=False)
    after = os.path.getmtime(os.path.join(tiny_kws, "synthetic_kws_manifest.json"))
    assert before == after  # not regenerated with the default parameters
    assert ds.name == "synthetic_kws12" and len(ds.y_train) == 24
    assert ds.summary["synthetic_kws"]["params"]["words"][-1] == "cat"
    args = datasets.model_arguments(ds)
    assert args["frontend"]["params"] == get_frontend("micro40").params
    shape = (args["num_frames"], args["num_features"], args["num_classes"])
    assert shape == (49, 40, 12)


def test_extra_augmentations():
    from lmuformer_keras.training.pipeline import frequency_shift, random_equalizer

    x = np.tile(np.arange(5, dtype=np.float32), (3, 2, 1))  # (3, 2, 5)
    rng = np.random.default_rng(0)
    y = frequency_shift(x, 2, rng)
    for row in y[:, 0]:  # a shifted ramp, edges repeated
        assert np.all(np.diff(row) >= 0) and set(row) <= set(range(5))
    z = random_equalizer(np.zeros((4, 3, 6), np.float32), 0.1, rng)
    assert np.all(np.abs(z) <= 0.4 + 1e-6)
    np.testing.assert_array_equal(z[:, 0], z[:, 2])  # the same curve every frame
    assert not np.allclose(z[0, 0], z[1, 0])


def test_reversed_keywords_become_unknown():
    from lmuformer_keras.training.pipeline import reversal_arguments, reverse_to_unknown

    labels = ["_silence_", "_unknown_", "yes", "no"]
    args = reversal_arguments(labels, 0.5)
    assert args == {"reversed_unknown": 0.5, "keyword_classes": [2, 3],
                    "unknown_index": 1}  # fmt: skip
    assert reversal_arguments(labels, 0.0) == {}
    with pytest.raises(ValueError, match=r"--reversed_unknown=0.5 needs an _unknown_"):
        reversal_arguments(["a", "b"], 0.5)
    x = np.arange(64 * 3 * 2, dtype=np.float32).reshape(64, 3, 2)
    y = np.eye(4, dtype=np.float32)[np.arange(64) % 4]
    out_x, out_y = reverse_to_unknown(x, y, 1.0, [2, 3], 1, np.random.default_rng(0))
    keyword = np.isin(np.arange(64) % 4, [2, 3])
    np.testing.assert_array_equal(out_x[keyword], x[keyword, ::-1])
    np.testing.assert_array_equal(out_y[keyword].argmax(-1), 1)
    np.testing.assert_array_equal(out_x[~keyword], x[~keyword])  # others untouched
    np.testing.assert_array_equal(out_y[~keyword], y[~keyword])
    half_x, _ = reverse_to_unknown(x, y, 0.5, [2, 3], 1, np.random.default_rng(0))
    flipped = (half_x != x).any(axis=(1, 2))
    assert 0 < flipped.sum() < keyword.sum() and not flipped[~keyword].any()
    batches = TrainBatches(x, np.arange(64) % 4, 4, 16, seed=0,
                           augmenter=None, **args)  # fmt: skip
    assert batches.reversed_unknown == 0.5
    with pytest.raises(ValueError, match="needs an _unknown_ class"):
        TrainBatches(x, np.arange(64) % 4, 4, 16, seed=0, reversed_unknown=0.5)
