"""Android app (``apps/android``): kws-core compiled and unit-tested on the host JDK.

``make_golden.py`` writes golden vectors from the Python app on the stand-in export
(features of real WAVs, every tensor of every step of a recorded stream, smoothing
streams); ``javac`` compiles ``kws-core`` (``--release 11``, ``-Werror``) and its
JUnit 4 tests, which run against those vectors. JUnit 4 comes from Debian's
``junit4`` package (``apt-get install -y junit4`` -> ``/usr/share/java/junit4.jar``;
``$JUNIT_JAR`` overrides); without it the tests run on the minimal stand-in in
``kws-core/src/test-harness`` (which is also tested here). The app's own sources
(Activity, LiteRT adapter) are compiled against stubs of the Android / LiteRT classes
they use: an APK cannot be built here (no Android SDK). Skipped only without ``javac``.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pathlib
import shutil
import subprocess

import pytest

import apps_fixtures as af

af.ensure_apps_importable()

ANDROID = os.path.join(af.REPO, "apps", "android")
CORE = os.path.join(ANDROID, "kws-core", "src")
JAVAC = shutil.which("javac")
JAVA = shutil.which("java")
TEST_CLASSES = [
    "org.lmuformer.kws.JsonTest",
    "org.lmuformer.kws.MetadataTest",
    "org.lmuformer.kws.FrontendGoldenTest",
    "org.lmuformer.kws.StreamGoldenTest",
    "org.lmuformer.kws.RecognizeCommandsTest",
]

pytestmark = pytest.mark.skipif(
    JAVAC is None or JAVA is None, reason="no JDK (javac/java) on PATH"
)


def _junit_classpath() -> list[str] | None:
    jar = os.environ.get("JUNIT_JAR") or "/usr/share/java/junit4.jar"
    if not os.path.isfile(jar):
        return None
    hamcrest = [
        p
        for p in ("/usr/share/java/hamcrest-core.jar", "/usr/share/java/hamcrest.jar")
        if os.path.isfile(p)
    ]
    return [jar, *hamcrest[:1]]


def _sources(root: str) -> list[str]:
    return sorted(glob.glob(os.path.join(root, "**", "*.java"), recursive=True))


def _javac(out: str, sources: list[str], classpath: list[str] = ()) -> None:
    cmd = [JAVAC, "--release", "11", "-Xlint:all", "-Werror", "-encoding", "UTF-8"]
    if classpath:
        cmd += ["-cp", os.pathsep.join(classpath)]
    proc = subprocess.run(
        [*cmd, "-d", out, *sources], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    root = tmp_path_factory.mktemp("android")
    wavs = af.write_test_wavs(str(root / "wavs"))
    spec = importlib.util.spec_from_file_location(
        "make_golden", os.path.join(ANDROID, "make_golden.py")
    )
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    out = str(root / "golden")
    args = ["--model_dir", af.standin_export_dir(), "--out_dir", out]
    for path in wavs.values():
        args += ["--wav", path]
    assert make_golden.main([*args, "--stream_wav", wavs["tones"]]) == 0
    main_classes = str(root / "main")
    _javac(main_classes, _sources(os.path.join(CORE, "main", "java")))
    return {"dir": out, "main": main_classes, "root": root}


def _run_tests(golden, classpath: list[str], test_sources: list[str], out: str) -> str:
    _javac(out, test_sources, [golden["main"], *classpath])
    proc = subprocess.run(
        [
            JAVA,
            "-cp",
            os.pathsep.join([golden["main"], out, *classpath]),
            f"-Dkws.golden={golden['dir']}",
            "org.junit.runner.JUnitCore",
            *TEST_CLASSES,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_kws_core_unit_tests(golden):
    """JUnit 4 (Debian junit4) when installed, else the stand-in harness."""
    classpath = _junit_classpath()
    sources = _sources(os.path.join(CORE, "test", "java"))
    if classpath is None:
        sources += _sources(os.path.join(CORE, "test-harness", "java"))
        classpath = []
    out = _run_tests(golden, classpath, sources, str(golden["root"] / "test"))
    print(out)
    assert "OK (16 tests)" in out
    assert "Java vs NumPy features: max abs diff" in out
    # the stand-in's tone stream at the default smoothing: "low" and "high" (its
    # clipped tone peaks at 0.85, under the 0.95 threshold); Java equals Python
    assert "replayed 244 steps, 2 detections" in out


def test_kws_core_unit_tests_on_stand_in_harness(golden):
    """The fallback harness keeps working (used where junit4 is not installed)."""
    sources = _sources(os.path.join(CORE, "test", "java"))
    sources += _sources(os.path.join(CORE, "test-harness", "java"))
    out = _run_tests(golden, [], sources, str(golden["root"] / "test_harness"))
    assert "kws-core test harness" in out and "OK (16 tests)" in out


# Stubs of the Android / LiteRT API surface the app uses (signatures as documented), so
# the app's Java compiles here; they do nothing.
ANDROID_STUBS = {
    "android/Manifest.java": """package android;
public final class Manifest { public static final class permission {
  public static final String RECORD_AUDIO = "android.permission.RECORD_AUDIO"; } }""",
    "android/content/Context.java": """package android.content;
public abstract class Context {
  public android.content.res.AssetManager getAssets() { return null; } }""",
    "android/content/pm/PackageManager.java": """package android.content.pm;
public abstract class PackageManager {
  public static final int PERMISSION_GRANTED = 0; }""",
    "android/content/res/AssetManager.java": """package android.content.res;
public final class AssetManager {
  public java.io.InputStream open(String name) throws java.io.IOException {
    return null; }
  public AssetFileDescriptor openFd(String name) throws java.io.IOException {
    return null; } }""",
    "android/content/res/AssetFileDescriptor.java": """package android.content.res;
public class AssetFileDescriptor implements java.io.Closeable {
  public java.io.FileDescriptor getFileDescriptor() { return null; }
  public long getStartOffset() { return 0; }
  public long getDeclaredLength() { return 0; }
  @Override public void close() throws java.io.IOException {} }""",
    "android/app/Activity.java": """package android.app;
public class Activity extends android.content.Context {
  protected void onCreate(android.os.Bundle savedInstanceState) {}
  protected void onResume() {}
  protected void onPause() {}
  protected void onDestroy() {}
  public void setContentView(int layoutResID) {}
  public <T extends android.view.View> T findViewById(int id) { return null; }
  public final void runOnUiThread(Runnable action) {}
  public int checkSelfPermission(String permission) { return 0; }
  public final void requestPermissions(String[] permissions, int requestCode) {}
  public void onRequestPermissionsResult(int requestCode, String[] permissions,
      int[] grantResults) {} }""",
    "android/os/Bundle.java": "package android.os; public final class Bundle {}",
    "android/view/View.java": "package android.view; public class View {}",
    "android/widget/TextView.java": """package android.widget;
public class TextView extends android.view.View {
  public final void setText(CharSequence text) {}
  public final void setText(int resid) {} }""",
    "android/util/Log.java": """package android.util;
public final class Log {
  public static int i(String tag, String msg) { return 0; }
  public static int e(String tag, String msg, Throwable tr) { return 0; } }""",
    "android/media/AudioFormat.java": """package android.media;
public final class AudioFormat {
  public static final int CHANNEL_IN_MONO = 16;
  public static final int ENCODING_PCM_16BIT = 2; }""",
    "android/media/MediaRecorder.java": """package android.media;
public class MediaRecorder { public final class AudioSource {
  public static final int MIC = 1;
  public static final int VOICE_RECOGNITION = 6; } }""",
    "android/media/AudioRecord.java": """package android.media;
public class AudioRecord {
  public static final int STATE_INITIALIZED = 1;
  public AudioRecord(int audioSource, int sampleRateInHz, int channelConfig,
      int audioFormat, int bufferSizeInBytes) {}
  public static int getMinBufferSize(int sampleRateInHz, int channelConfig,
      int audioFormat) { return 0; }
  public int getState() { return 0; }
  public void startRecording() {}
  public int read(short[] audioData, int offsetInShorts, int sizeInShorts) { return 0; }
  public void stop() {}
  public void release() {} }""",
    "org/tensorflow/lite/DataType.java": """package org.tensorflow.lite;
public enum DataType { FLOAT32, INT32, UINT8, INT64, STRING, BOOL, INT16, INT8 }""",
    "org/tensorflow/lite/Tensor.java": """package org.tensorflow.lite;
public interface Tensor {
  final class QuantizationParams {
    public float getScale() { return 0f; }
    public int getZeroPoint() { return 0; } }
  DataType dataType();
  int numBytes();
  int[] shape();
  QuantizationParams quantizationParams(); }""",
    "org/tensorflow/lite/Interpreter.java": """package org.tensorflow.lite;
public final class Interpreter implements AutoCloseable {
  public static class Options { public Options setNumThreads(int n) { return this; } }
  public Interpreter(java.nio.ByteBuffer model, Options options) {}
  public int getInputTensorCount() { return 0; }
  public int getOutputTensorCount() { return 0; }
  public Tensor getInputTensor(int index) { return null; }
  public Tensor getOutputTensor(int index) { return null; }
  public void runForMultipleInputsOutputs(Object[] inputs,
      java.util.Map<Integer, Object> outputs) {}
  @Override public void close() {} }""",
    "org/lmuformer/kws/app/R.java": """package org.lmuformer.kws.app;
public final class R {
  public static final class layout { public static final int activity_main = 1; }
  public static final class id {
    public static final int word = 2; public static final int status = 3; }
  public static final class string {
    public static final int no_permission = 4; } }""",
}


def test_android_app_sources_compile_against_api_stubs(golden, tmp_path):
    stubs = tmp_path / "stubs"
    for rel, text in ANDROID_STUBS.items():
        path = stubs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    app_sources = _sources(os.path.join(ANDROID, "app", "src", "main", "java"))
    assert len(app_sources) == 2
    _javac(str(tmp_path / "app"), app_sources + _sources(str(stubs)), [golden["main"]])
    main = pathlib.Path(ANDROID, "app", "src", "main")
    manifest = (main / "AndroidManifest.xml").read_text()
    assert "android.permission.RECORD_AUDIO" in manifest
    layout = (main / "res" / "layout" / "activity_main.xml").read_text()
    assert "@+id/word" in layout and "@+id/status" in layout
