"""The layout a newcomer can follow (#22 item 4): presets are plain data that import
no model, the scripts import the installed packages (no package registered by hand)
and say how to install when the project is not, every package folder is declared."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest

import apps_fixtures as af

REPO = af.REPO
SCRIPTS = {
    "gen_params.py": os.path.join(REPO, "apps", "mcu", "gen_params.py"),
    "make_golden.py": os.path.join(REPO, "apps", "android", "make_golden.py"),
}
# Registering a package by hand: editing the import path, loading a module from a
# file, or planting an entry in sys.modules.
HAND_REGISTRATION = re.compile(
    r"sys\.path\s*(\.\s*(insert|append|extend)\b|\[[^\]]*\]\s*=|\+?=)"
    r"|spec_from_file_location|module_from_spec|sys\.modules\[[^\]]+\]\s*="
)


def _run(args, cwd, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


# ------------------------------------------------------------------ presets
def test_importing_presets_imports_neither_the_model_nor_keras(tmp_path):
    proc = _run(
        [
            "-c",
            "import sys; import lmuformer_keras.models.presets as p; "
            "p.preset_config('lmuformer_tiny_kws'); p.list_presets(); "
            "print(sorted(m for m in ('lmuformer_keras.models.lmuformer', "
            "'lmuformer_keras.layers', 'keras', 'tensorflow', 'jax', 'torch') "
            "if m in sys.modules))",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"


def test_presets_module_has_no_import_of_the_model():
    path = os.path.join(REPO, "lmuformer_keras", "models", "presets.py")
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
            imported.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not {m for m in imported if m.startswith("lmuformer_keras.models")}


def test_presets_are_plain_data():
    from lmuformer_keras.models.presets import PRESETS, preset_config

    before = json.dumps(PRESETS, sort_keys=True)  # JSON-ready: plain data only
    config = preset_config("lmuformer_tiny_kws", dim=8)
    config["frontend"]["params"]["num_mel_bins"] = 1
    assert json.dumps(PRESETS, sort_keys=True) == before  # copies, never the data
    assert PRESETS["lmuformer_tiny_kws"]["frontend"] == {"name": "micro40"}
    with pytest.raises(ValueError, match="no_such_preset"):
        preset_config("no_such_preset")


# ------------------------------------------------------------------ scripts
def _project_sources() -> list[str]:
    paths = list(SCRIPTS.values())
    for top in ("apps", "export", "lmuformer_keras"):
        for root, _, files in os.walk(os.path.join(REPO, top)):
            paths += [os.path.join(root, f) for f in files if f.endswith(".py")]
    return sorted(set(paths))


def test_no_project_file_registers_a_package_by_hand():
    offenders = []
    for path in _project_sources():
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if HAND_REGISTRATION.search(line):
                    offenders.append(f"{os.path.relpath(path, REPO)}:{number}: {line}")
    assert not offenders, "".join(offenders)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_scripts_without_the_install_say_so_in_one_line(script, tmp_path):
    # The project's packages made unimportable, as in a checkout never installed.
    blocker = (
        "import runpy, sys\n"
        "class NotInstalled:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in (\n"
        "            'lmuformer_keras', 'lmuformer_apps', 'lmuformer_export'):\n"
        "            raise ModuleNotFoundError(f'no module {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
        f"sys.argv = [{SCRIPTS[script]!r}, '--help']\n"
        f"runpy.run_path({SCRIPTS[script]!r}, run_name='__main__')\n"
    )
    proc = _run(["-c", blocker], cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{script}: lmuformer_"), lines[0]
    assert "pip install -e ." in lines[0] and REPO in lines[0], lines[0]
    assert proc.stdout == ""


def test_gen_params_runs_as_a_script(tmp_path):
    proc = _run([SCRIPTS["gen_params.py"], "--check"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "micro40_params.h is up to date" in proc.stdout


def test_make_golden_runs_as_a_script(tmp_path):
    wavs = af.write_test_wavs(str(tmp_path / "wavs"))
    out = tmp_path / "golden"
    args = [SCRIPTS["make_golden.py"], "--model_dir", af.standin_export_dir()]
    args += ["--out_dir", str(out), "--wav", wavs["tones"]]
    proc = _run(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "golden.json", encoding="utf-8") as fh:
        golden = json.load(fh)
    assert golden["stream"]["steps"] and golden["features"]
    assert (out / "metadata.json").is_file()


# ------------------------------------------------------------------ packaging
def test_every_package_folder_is_declared_in_pyproject():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as fh:
        setuptools = tomllib.load(fh)["tool"]["setuptools"]
    declared = set(setuptools["packages"])
    found = set()
    for name, folder in setuptools["package-dir"].items():
        root = os.path.join(REPO, folder)
        for here, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                rel = os.path.relpath(here, root)
                found.add(name if rel == "." else f"{name}.{rel.replace(os.sep, '.')}")
    assert found == declared
