"""MCU app (``apps/mcu``): C frontend and smoothing against Python; main_loop.cc.

- ``micro40_frontend.c`` is compiled with the host C compiler into a shared library
  (ctypes) and run on WAVs (tones, a chirp, noise, clipping, near-silence and espeak-ng
  speech when available); its features must match the NumPy reference within
  ``C_TOLERANCE = 1e-3`` absolute in normalised units (measured: below 1e-4).
- ``recognize_commands.c`` must report the detections of the Python smoothing.
- ``main_loop.cc`` cannot be built against TFLite Micro here (no TFLM source tree). It
  is compiled and linked against stub TFLM headers written below, whose
  ``MicroInterpreter`` replays the per-frame tensors recorded from the Python
  ``StreamingInterpreter`` on the stand-in model, checking on each ``Invoke`` that the
  frame input matches (within 1 LSB) and that every state input is exactly the previous
  state output. The detections it reports must equal the Python app's.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import apps_fixtures as af

af.ensure_apps_importable()

from lmuformer_apps.kws_stream import (  # noqa: E402
    DEFAULT_AVERAGE_WINDOW_MS,
    DEFAULT_DETECTION_THRESHOLD,
    DEFAULT_MINIMUM_COUNT,
    DEFAULT_SUPPRESSION_MS,
    KWSStream,
    RecognizeCommands,
    StreamingInterpreter,
    read_wav,
    softmax,
)
from lmuformer_apps.kws_stream.smoothing import POSTERIOR_FLOOR  # noqa: E402
from lmuformer_keras.features import get_frontend  # noqa: E402

MCU = os.path.join(af.REPO, "apps", "mcu")
CC = shutil.which("cc") or shutil.which("gcc")
CXX = shutil.which("g++") or shutil.which("c++")
C_TOLERANCE = 1e-3
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror"]

pytestmark = pytest.mark.skipif(CC is None, reason="no host C compiler (cc)")


def _gen_params():
    spec = importlib.util.spec_from_file_location(
        "gen_params", os.path.join(MCU, "gen_params.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _header_int(name: str) -> int:
    with open(os.path.join(MCU, "micro40_params.h")) as fh:
        text = fh.read()
    return int(re.search(rf"#define {name} (\d+)", text).group(1))


class _Frontend(ctypes.Structure):
    _fields_ = [
        ("samples", ctypes.c_int16 * _header_int("MICRO40_FRAME_LENGTH")),
        ("num_buffered", ctypes.c_int),
        ("work", ctypes.c_float * _header_int("MICRO40_FFT_SIZE")),
        ("power", ctypes.c_float * _header_int("MICRO40_NUM_BINS")),
    ]


class _Detection(ctypes.Structure):
    _fields_ = [
        ("index", ctypes.c_int),
        ("time_ms", ctypes.c_uint32),
        ("score", ctypes.c_float),
    ]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("mcu") / "libkws.so"
    sources = [
        os.path.join(MCU, f) for f in ("micro40_frontend.c", "recognize_commands.c")
    ]
    subprocess.run(
        [CC, *CFLAGS, "-shared", "-fPIC", "-I", MCU, *sources, "-lm", "-o", str(out)],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(out))
    lib.micro40_push.argtypes = [
        ctypes.POINTER(_Frontend),
        ctypes.POINTER(ctypes.c_int16),
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
        ctypes.c_int,
    ]
    lib.micro40_push_hop.argtypes = [
        ctypes.POINTER(_Frontend),
        ctypes.POINTER(ctypes.c_int16),
        ctypes.POINTER(ctypes.c_float),
    ]
    lib.micro40_frames_ready.argtypes = [ctypes.POINTER(_Frontend), ctypes.c_int]
    lib.kws_rc_init.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_uint8),
        ctypes.c_uint32,
        ctypes.c_float,
        ctypes.c_uint32,
        ctypes.c_int,
    ]
    lib.kws_rc_process.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_float),
        ctypes.c_uint32,
        ctypes.POINTER(_Detection),
    ]
    return lib


def _ptr(a, ctype):
    return a.ctypes.data_as(ctypes.POINTER(ctype))


def c_features(lib, x: np.ndarray, chunks=None) -> np.ndarray:
    """C features of int16 ``x`` pushed in ``chunks`` (sizes) or all at once."""
    fe = _Frontend()
    lib.micro40_init(ctypes.byref(fe))
    x = np.ascontiguousarray(x, dtype=np.int16)
    sizes = chunks if chunks is not None else [x.shape[0]]
    out, pos = [], 0
    for n in sizes:
        part = np.ascontiguousarray(x[pos : pos + n])
        pos += part.shape[0]
        ready = lib.micro40_frames_ready(ctypes.byref(fe), part.shape[0])
        frames = np.zeros((max(ready, 1), 40), np.float32)
        got = lib.micro40_push(
            ctypes.byref(fe),
            _ptr(part, ctypes.c_int16),
            part.shape[0],
            _ptr(frames, ctypes.c_float),
            ready,
        )
        assert got == ready
        out.append(frames[:got])
    return np.concatenate(out)


def test_params_header_is_generated_and_current():
    gen = _gen_params()
    assert gen.main(["--check"]) == 0
    fbank = get_frontend("fbank128").params
    with pytest.raises(ValueError, match="remove_clip_mean"):
        gen.check_supported(fbank)
    text = gen.params_header(get_frontend("micro40"))
    assert "#define MICRO40_FRAME_STEP 320" in text
    assert "#define MICRO40_NUM_MEL_BINS 40" in text


def test_c_frontend_matches_python(lib, tmp_path):
    frontend = get_frontend("micro40")
    paths = af.write_test_wavs(str(tmp_path))
    rng = np.random.default_rng(0)
    clips = {name: read_wav(path).samples for name, path in paths.items()}
    clips["one_lsb_noise"] = rng.integers(-1, 2, 8000).astype(np.int16)
    clips["full_scale_dc"] = np.full(4000, 32767, np.int16)
    worst = {}
    for name, x in clips.items():
        ref = frontend(x, pad=False)
        whole = c_features(lib, x)
        assert whole.shape == ref.shape, name
        chunks = rng.integers(0, 700, size=x.shape[0] // 300 + 2).tolist()
        chunks.append(x.shape[0])
        assert np.array_equal(c_features(lib, x, chunks), whole), name
        worst[name] = float(np.max(np.abs(whole - ref))) if ref.size else 0.0
    print("C vs NumPy max abs diff (normalised units):", worst)
    assert max(worst.values()) <= C_TOLERANCE, worst
    assert "speech_yes" in clips or af.speech("yes") is None


def test_c_frontend_streaming_api(lib):
    fe = _Frontend()
    lib.micro40_init(ctypes.byref(fe))
    x, _ = af.tone_stream()
    frame = np.zeros(40, np.float32)
    frames = []
    for k in range(10):
        hop = np.ascontiguousarray(x[320 * k : 320 * (k + 1)])
        got = lib.micro40_push_hop(
            ctypes.byref(fe), _ptr(hop, ctypes.c_int16), _ptr(frame, ctypes.c_float)
        )
        assert got == (0 if k == 0 else 1)
        if got:
            frames.append(frame.copy())
    ref = get_frontend("micro40")(x[:3200], pad=False)
    assert np.max(np.abs(np.stack(frames) - ref)) <= C_TOLERANCE
    # refuses (and consumes nothing) when the output has too little room
    assert lib.micro40_frames_ready(ctypes.byref(fe), 1000) == 3
    out = np.zeros((2, 40), np.float32)
    part = np.ascontiguousarray(x[:1000])
    before = fe.num_buffered
    assert (
        lib.micro40_push(
            ctypes.byref(fe),
            _ptr(part, ctypes.c_int16),
            1000,
            _ptr(out, ctypes.c_float),
            2,
        )
        == -1
    )
    assert fe.num_buffered == before


def _c_detections(lib, posteriors, times, labels, **kwargs):
    rc = ctypes.create_string_buffer(64 * 1024)  # > sizeof(KwsRecognizer)
    ref = RecognizeCommands(labels, **kwargs)
    ignored = np.ascontiguousarray(ref.ignored.astype(np.uint8))
    assert (
        lib.kws_rc_init(
            rc,
            len(labels),
            _ptr(ignored, ctypes.c_uint8),
            int(ref.average_window_ms),
            ctypes.c_float(ref.detection_threshold),
            int(ref.suppression_ms),
            ref.minimum_count,
        )
        == 0
    )
    out = []
    det = _Detection()
    for p, t in zip(posteriors, times, strict=True):
        p32 = np.ascontiguousarray(p, np.float32)
        code = lib.kws_rc_process(
            rc, _ptr(p32, ctypes.c_float), int(t), ctypes.byref(det)
        )
        assert code in (0, 1)
        if code == 1:
            out.append((labels[det.index], float(det.time_ms), det.score))
    return out, ref.process_many(posteriors, times)


def test_c_smoothing_matches_python(lib):
    labels = ["_silence_", "_unknown_", "yes", "no", "up"]
    rng = np.random.default_rng(0)
    n = 3000
    times = 30 + 20 * np.arange(n)
    # bursts of one label over a noisy background
    logits = rng.normal(0, 1.0, (n, len(labels)))
    for start in rng.integers(0, n - 40, size=40):
        logits[start : start + rng.integers(10, 40), rng.integers(0, len(labels))] += 5
    # x30: frame logits as sharp as a trained int8 model's (+-130), so that many
    # posteriors fall below the floor (1e-30) in both the float64 and float32 code
    for scale, kwargs in (
        (1.0, {}),
        (1.0, {"average_window_ms": 200, "suppression_ms": 300}),
        (30.0, {}),
    ):
        post = softmax(scale * logits)
        if scale > 1:
            assert (post < POSTERIOR_FLOOR).mean() > 0.25
        c_out, py_out = _c_detections(lib, post, times, labels, **kwargs)
        assert len(py_out) > 5
        assert [(d, t) for d, t, _ in c_out] == [(d.label, d.time_ms) for d in py_out]
        assert np.allclose(
            [s for _, _, s in c_out], [d.score for d in py_out], atol=1e-5
        )
    rc = ctypes.create_string_buffer(64 * 1024)
    assert lib.kws_rc_init(rc, 0, None, 500, ctypes.c_float(0.6), 1000, 10) == -1
    assert lib.kws_rc_init(rc, 3, None, 500, ctypes.c_float(1.5), 1000, 10) == -1
    assert lib.kws_rc_init(rc, 3, None, 500, ctypes.c_float(0.6), 1000, 10) == 0
    p = np.ascontiguousarray(np.ones(3, np.float32) / 3)
    assert lib.kws_rc_process(rc, _ptr(p, ctypes.c_float), 100, None) == 0
    assert lib.kws_rc_process(rc, _ptr(p, ctypes.c_float), 80, None) == -2


# ----------------------------------------------------------- main_loop.cc + stub TFLM
TFLM_STUB_H = r"""
// Stub of the TFLite Micro API used by main_loop.cc (tests only). MicroInterpreter
// replays tensors recorded in Python (file named by $KWS_REPLAY) and checks inputs.
#ifndef TFLM_STUB_H_
#define TFLM_STUB_H_
#include <cstddef>
#include <cstdint>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum {
  kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt16 = 7, kTfLiteInt8 = 9
} TfLiteType;
typedef struct { float scale; int32_t zero_point; } TfLiteQuantizationParams;
typedef union {
  int8_t* int8; int16_t* i16; float* f; uint8_t* uint8; char* raw;
  const char* raw_const;
} TfLitePtrUnion;
typedef struct {
  TfLiteType type; TfLitePtrUnion data; size_t bytes; TfLiteQuantizationParams params;
} TfLiteTensor;
#define TFLITE_SCHEMA_VERSION (3)
void MicroPrintf(const char* format, ...);
namespace tflite {
struct Model { uint32_t version() const { return 3; } };
inline const Model* GetModel(const void*) { static Model m; return &m; }
void InitializeTarget();
class MicroOpResolver {};
template <unsigned int N>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
@ADD_METHODS@
};
class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& resolver,
                   uint8_t* arena, size_t arena_size);
  ~MicroInterpreter();
  TfLiteStatus AllocateTensors();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
  size_t inputs_size() const;
  size_t outputs_size() const;
  TfLiteStatus Invoke();
  size_t arena_used_bytes() const;
};
}  // namespace tflite
#endif
"""

TFLM_STUB_CC = r"""
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "tensorflow/lite/micro/micro_interpreter.h"

void MicroPrintf(const char* format, ...) {
  va_list args; va_start(args, format); vfprintf(stderr, format, args);
  va_end(args); fputc('\n', stderr);
}
namespace tflite {
void InitializeTarget() {}
namespace {
struct Spec { int type; float scale; int zp; int count; };
std::vector<Spec> g_in_spec, g_out_spec;
std::vector<TfLiteTensor> g_in, g_out;
std::vector<std::vector<double>> g_records;  // per frame: inputs then outputs
int g_frame_pos = 0, g_t = 0, g_state_mismatch = 0, g_lsb = 0, g_big = 0;
int ElemBytes(int type) {
  return type == kTfLiteInt8 ? 1 : type == kTfLiteInt16 ? 2 : 4;
}
double Get(const TfLiteTensor& t, int i) {
  return t.type == kTfLiteInt8 ? t.data.int8[i] : t.type == kTfLiteInt16 ? t.data.i16[i]
                                                                         : t.data.f[i];
}
void Set(TfLiteTensor& t, int i, double v) {
  if (t.type == kTfLiteInt8) t.data.int8[i] = (int8_t)v;
  else if (t.type == kTfLiteInt16) t.data.i16[i] = (int16_t)v;
  else t.data.f[i] = (float)v;
}
void Make(std::vector<Spec>& specs, std::vector<TfLiteTensor>& ts) {
  for (const Spec& s : specs) {
    TfLiteTensor t;
    t.type = (TfLiteType)s.type;
    t.bytes = (size_t)s.count * ElemBytes(s.type);
    t.data.raw = (char*)calloc(t.bytes, 1);
    t.params.scale = s.scale;
    t.params.zero_point = s.zp;
    ts.push_back(t);
  }
}
}  // namespace
MicroInterpreter::MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t*,
                                   size_t) {}
MicroInterpreter::~MicroInterpreter() {
  printf("REPLAY frames=%d state_mismatches=%d frame_lsb_diffs=%d frame_big_diffs=%d\n",
         g_t, g_state_mismatch, g_lsb, g_big);
}
TfLiteStatus MicroInterpreter::AllocateTensors() {
  FILE* f = fopen(getenv("KWS_REPLAY"), "r");
  if (!f) return kTfLiteError;
  int n_in, n_out, frames;
  if (fscanf(f, "%d %d %d %d", &n_in, &n_out, &g_frame_pos, &frames) != 4) {
    return kTfLiteError;
  }
  for (int k = 0; k < n_in + n_out; ++k) {
    Spec s;
    if (fscanf(f, "%d %f %d %d", &s.type, &s.scale, &s.zp, &s.count) != 4) {
      return kTfLiteError;
    }
    (k < n_in ? g_in_spec : g_out_spec).push_back(s);
  }
  Make(g_in_spec, g_in);
  Make(g_out_spec, g_out);
  int per_frame = 0;
  for (const Spec& s : g_in_spec) per_frame += s.count;
  for (const Spec& s : g_out_spec) per_frame += s.count;
  for (int t = 0; t < frames; ++t) {
    std::vector<double> r(per_frame);
    for (int i = 0; i < per_frame; ++i) {
      if (fscanf(f, "%lf", &r[i]) != 1) return kTfLiteError;
    }
    g_records.push_back(r);
  }
  fclose(f);
  return kTfLiteOk;
}
TfLiteTensor* MicroInterpreter::input(size_t i) {
  return i < g_in.size() ? &g_in[i] : nullptr;
}
TfLiteTensor* MicroInterpreter::output(size_t i) {
  return i < g_out.size() ? &g_out[i] : nullptr;
}
size_t MicroInterpreter::inputs_size() const { return g_in.size(); }
size_t MicroInterpreter::outputs_size() const { return g_out.size(); }
size_t MicroInterpreter::arena_used_bytes() const { return 0; }
TfLiteStatus MicroInterpreter::Invoke() {
  if (g_t >= (int)g_records.size()) return kTfLiteError;
  const std::vector<double>& r = g_records[g_t];
  int pos = 0;
  for (size_t k = 0; k < g_in.size(); ++k) {
    for (int i = 0; i < g_in_spec[k].count; ++i, ++pos) {
      const double d = std::fabs(Get(g_in[k], i) - r[pos]);
      if ((int)k == g_frame_pos) { g_lsb += d > 0; g_big += d > 1; }
      else if (d != 0) ++g_state_mismatch;
    }
    // the planner may reuse input memory during Invoke: scribble over it
    for (int i = 0; i < g_in_spec[k].count; ++i) Set(g_in[k], i, 1);
  }
  for (size_t k = 0; k < g_out.size(); ++k) {
    for (int i = 0; i < g_out_spec[k].count; ++i, ++pos) Set(g_out[k], i, r[pos]);
  }
  ++g_t;
  return kTfLiteOk;
}
}  // namespace tflite
"""

BOARD_CC = r"""
#include <cstdint>
#include <cstdio>
extern "C" int kws_board_read_audio(int16_t* samples, int num_samples) {
  const size_t got = fread(samples, sizeof(int16_t), (size_t)num_samples, stdin);
  return got == (size_t)num_samples ? num_samples : -1;
}
extern "C" void kws_board_report(const char* label, float score, uint32_t time_ms) {
  printf("DETECT %s %u %.6f\n", label, (unsigned)time_ms, score);
}
"""

FALLBACK_ADD_METHODS = [
    "AddAdd",
    "AddConcatenation",
    "AddFullyConnected",
    "AddMean",
    "AddMul",
    "AddQuantize",
    "AddReshape",
    "AddStridedSlice",
]
TYPE_CODES = {"int8": 9, "int16": 7, "float32": 1}


def _export_sources(model_bytes: bytes, ops: list[str]) -> tuple[str, str, str, list]:
    """``model_data.h``, ``model_data.cc`` and ``op_resolver.h`` as the exporter
    writes them (from ``lmuformer_export`` when importable)."""
    try:
        from lmuformer_export.artifacts import c_array_source, op_resolver_source
        from lmuformer_export.tflm_ops import TFLM_ADD_METHODS

        header, source = c_array_source(model_bytes)
        return (
            header,
            source,
            op_resolver_source(ops),
            sorted(set(TFLM_ADD_METHODS.values())),
        )
    except ImportError:
        data = ", ".join(str(b) for b in model_bytes)
        header = (
            "extern const unsigned char g_model_data[];\n"
            "extern const unsigned int g_model_data_len;\n"
        )
        source = (
            '#include "model_data.h"\n'
            f"alignas(16) const unsigned char g_model_data[] = {{{data}}};\n"
            f"const unsigned int g_model_data_len = {len(model_bytes)};\n"
        )
        calls = "\n".join(
            f"  if (resolver.{m}() != kTfLiteOk) return kTfLiteError;"
            for m in FALLBACK_ADD_METHODS
        )
        resolver = (
            '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n'
            "namespace lmuformer_export {\n"
            f"using OpResolver = tflite::MicroMutableOpResolver<{len(ops)}>;\n"
            "inline TfLiteStatus RegisterOps(OpResolver& resolver) {\n"
            f"{calls}\n  return kTfLiteOk;\n}}\n"
            "inline OpResolver& GetOpResolver() {\n  static OpResolver resolver;\n"
            "  static const TfLiteStatus s = RegisterOps(resolver);\n  (void)s;\n"
            "  return resolver;\n}\n}\n"
        )
        return header, source, resolver, FALLBACK_ADD_METHODS


def _write_replay(path, interpreter: StreamingInterpreter, frames, metadata) -> None:
    """Records every tensor of every step of ``interpreter`` on ``frames``."""
    details_in = interpreter._interpreter.get_input_details()
    details_out = interpreter._interpreter.get_output_details()
    lines = [f"{len(details_in)} {len(details_out)} {metadata['frame']['position']} "]
    lines[0] += str(len(frames))
    for d in [*details_in, *details_out]:
        scale, zp = d["quantization"]
        lines.append(
            f"{TYPE_CODES[np.dtype(d['dtype']).name]} {scale!r} {zp} "
            f"{int(np.prod(d['shape']))}"
        )
    interpreter.reset()
    for frame in frames:
        q = interpreter.quantize_frame(frame)
        ins = [None] * len(details_in)
        ins[interpreter.frame_info.position] = q
        for s, info in zip(interpreter.states, interpreter.state_infos, strict=True):
            ins[info.input.position] = s
        logits = interpreter.step_quantized(q)
        outs = [None] * len(details_out)
        outs[interpreter.logits_info.position] = logits
        for s, info in zip(interpreter.states, interpreter.state_infos, strict=True):
            outs[info.output.position] = s
        values = [np.asarray(a).reshape(-1) for a in [*ins, *outs]]
        lines.append(" ".join(str(v) for v in np.concatenate(values).tolist()))
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


STUB_HEADERS = (
    "micro/micro_interpreter.h",
    "micro/micro_log.h",
    "micro/system_setup.h",
    "micro/micro_mutable_op_resolver.h",
    "schema/schema_generated.h",
)


def _write_stub_build(build, model_bytes: bytes) -> None:
    """Writes the stub TFLM headers, the model sources and the board into ``build``."""
    stub = build / "tensorflow" / "lite"
    for sub in ("micro", "schema"):
        (stub / sub).mkdir(parents=True)
    header, source, resolver, methods = _export_sources(
        model_bytes, ["ADD", "CONCATENATION", "FULLY_CONNECTED", "MEAN", "MUL"]
    )
    add = "\n".join(f"  TfLiteStatus {m}() {{ return kTfLiteOk; }}" for m in methods)
    (build / "tflm_stub.h").write_text(TFLM_STUB_H.replace("@ADD_METHODS@", add))
    for name in STUB_HEADERS:
        (stub / name).write_text('#include "tflm_stub.h"\n')
    (build / "model_data.h").write_text(header)
    (build / "model_data.cc").write_text(source)
    (build / "op_resolver.h").write_text(resolver)
    (build / "tflm_stub.cc").write_text(TFLM_STUB_CC)
    (build / "board.cc").write_text(BOARD_CC)


@pytest.fixture
def stub_build(tmp_path):
    """``(build folder, export folder, metadata)``: the stand-in export's sources
    beside stub TFLM headers, not compiled yet."""
    export_dir = af.standin_export_dir()
    with open(os.path.join(export_dir, "metadata.json")) as fh:
        metadata = json.load(fh)
    with open(os.path.join(export_dir, "model.tflite"), "rb") as fh:
        model_bytes = fh.read()
    build = tmp_path / "build"
    _write_stub_build(build, model_bytes)
    return build, export_dir, metadata


def _link_main_loop(build) -> tuple[subprocess.CompletedProcess, str]:
    """Compiles the C sources and links ``main_loop.cc`` against the stub TFLM.

    Returns:
        ``(the link's completed process, the executable's path)``.
    """
    objects = []
    for src in ("micro40_frontend.c", "recognize_commands.c"):
        obj = build / (src + ".o")
        source = os.path.join(MCU, src)
        subprocess.run(
            [CC, *CFLAGS, "-I", str(build), "-c", source, "-o", str(obj)],
            check=True,
            capture_output=True,
            text=True,
        )
        objects.append(str(obj))
    cxxflags = ["-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror"]
    cxxflags += ["-I", str(build), "-I", MCU]
    sources = [
        os.path.join(MCU, "main_loop.cc"),
        str(build / "model_data.cc"),
        str(build / "tflm_stub.cc"),
        str(build / "board.cc"),
    ]
    exe = build / "kws_main"
    proc = subprocess.run(
        [CXX, *cxxflags, *sources, *objects, "-lm", "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    return proc, str(exe)


def _run_on_replay(exe: str, replay, x: np.ndarray) -> subprocess.CompletedProcess:
    """Runs the board executable on the int16 stream ``x``, replaying ``replay``."""
    return subprocess.run(
        [exe],
        input=x.astype("<i2").tobytes(),
        capture_output=True,
        env=dict(os.environ, KWS_REPLAY=str(replay)),
        timeout=60,
    )


@pytest.mark.skipif(CXX is None, reason="no host C++ compiler (g++)")
def test_main_loop_compiles_and_runs_on_stub_tflm(stub_build):
    build, export_dir, metadata = stub_build
    gen = _gen_params()
    metadata_path = os.path.join(export_dir, "metadata.json")
    assert gen.main(["--metadata", metadata_path, "--out_dir", str(build)]) == 0
    settings_h = build / "model_settings.h"
    settings = settings_h.read_text()
    assert f"#define KWS_ARENA_BYTES {metadata['arena_bytes']}" in settings
    assert '"_silence_", "_unknown_", "low", "high"' in settings
    # gen_params writes the Python defaults; the stand-in's posteriors are softer than
    # a trained model's (its clipped tone peaks at 0.85), so both sides use 0.6 here
    default = (
        f"#define KWS_DETECTION_THRESHOLD {gen.cfloat(DEFAULT_DETECTION_THRESHOLD)}"
    )
    assert default in settings
    settings_h.write_text(
        settings.replace(default, f"#define KWS_DETECTION_THRESHOLD {gen.cfloat(0.6)}")
    )
    for name, value in (
        ("AVERAGE_WINDOW_MS", int(DEFAULT_AVERAGE_WINDOW_MS)),
        ("SUPPRESSION_MS", int(DEFAULT_SUPPRESSION_MS)),
        ("MINIMUM_COUNT", DEFAULT_MINIMUM_COUNT),
    ):
        assert f"#define KWS_{name} {value}\n" in settings

    proc, exe = _link_main_loop(build)
    assert proc.returncode == 0, proc.stderr

    x, events = af.tone_stream()
    x = x[: x.shape[0] // 320 * 320]  # whole hops: the board reads one hop at a time
    python = KWSStream.from_dir(export_dir, detection_threshold=0.6)
    expected = python.push(x)
    frames = get_frontend("micro40")(x, pad=False)
    replay = build / "replay.txt"
    _write_replay(replay, StreamingInterpreter(export_dir), frames, metadata)
    run = _run_on_replay(exe, replay, x)
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode() + out
    summary = re.search(
        r"REPLAY frames=(\d+) state_mismatches=(\d+) "
        r"frame_lsb_diffs=(\d+) frame_big_diffs=(\d+)",
        out,
    )
    assert summary, out
    n, mismatches, lsb, big = map(int, summary.groups())
    print(summary.group(0))
    assert n == frames.shape[0] and mismatches == 0 and big == 0
    assert lsb <= frames.size // 1000, lsb  # C float vs NumPy float64 features
    got = [line.split() for line in out.splitlines() if line.startswith("DETECT")]
    assert [(g[1], float(g[2])) for g in got] == [
        (d.label, d.time_ms) for d in expected
    ]
    assert np.allclose(
        [float(g[3]) for g in got], [d.score for d in expected], atol=1e-4
    )
    assert [d.label for d in expected] == [e[0] for e in events]
