// TensorFlow Lite Micro main loop for an exported LMUFormer keyword spotter.
//
// A template: copy it into a TFLM project with the export's artifacts and link it
// against the TFLM library of the TFLM source tree (not buildable in this repository,
// which has no TFLM source tree; tests/test_apps_mcu.py only compiles it against stub
// TFLM headers to check its C++). Files it needs:
//
//   model_data.h / model_data.cc  lmuformer-export: g_model_data (the flatbuffer)
//   op_resolver.h                 lmuformer-export: lmuformer_export::GetOpResolver()
//   model_settings.h              apps/mcu/gen_params.py --metadata metadata.json:
//                                 arena size, tensor positions, scales, zero points,
//                                 state layout, labels, smoothing defaults
//   micro40_params.h              apps/mcu/gen_params.py (same run): frontend tables
//   micro40_frontend.c/.h, recognize_commands.c/.h   (this folder)
//
// and two functions for the board (declared below): kws_board_read_audio() (16 kHz
// mono int16 from the microphone, one hop at a time) and kws_board_report().
//
// Per 20 ms hop, the loop every app runs (docs/ARCHITECTURE.md):
//   audio hop -> micro40 frame -> quantize into the frame input -> copy the saved
//   states into the state inputs -> Invoke -> save the state outputs -> dequantize
//   the logits -> softmax -> smoothing -> detection.
//
// States are saved in buffers owned here, not copied output -> input directly: TFLM's
// memory planner may place an output tensor over another input tensor (their
// lifetimes do not overlap), so a direct copy could overwrite a state output not yet
// copied. Define KWS_NO_MAIN to use KwsSetup() / KwsLoopOnce() from your own main().

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "micro40_frontend.h"
#include "model_data.h"
#include "model_settings.h"
#include "op_resolver.h"
#include "recognize_commands.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

// ---------------------------------------------------------------- board hooks
extern "C" {
// Blocks until `num_samples` new 16 kHz mono samples are read into `samples`;
// returns the count read (num_samples), or < 0 when the audio source has ended.
int kws_board_read_audio(int16_t* samples, int num_samples);
// Called once per detection.
void kws_board_report(const char* label, float score, uint32_t time_ms);
}

static_assert(KWS_NUM_FEATURES == MICRO40_NUM_MEL_BINS,
              "model_settings.h and micro40_params.h disagree on the feature count");
static_assert(KWS_FRAME_HOP_MS * MICRO40_SAMPLE_RATE == MICRO40_FRAME_STEP * 1000,
              "the model's frame hop differs from the frontend's");
static_assert(KWS_NUM_CLASSES <= KWS_RC_MAX_CLASSES,
              "raise KWS_RC_MAX_CLASSES (recognize_commands.h)");
static_assert(KWS_AVERAGE_WINDOW_MS <= KWS_RC_MAX_RESULTS * KWS_FRAME_HOP_MS,
              "raise KWS_RC_MAX_RESULTS (recognize_commands.h)");

namespace {

alignas(16) uint8_t g_arena[KWS_ARENA_BYTES];
Micro40Frontend g_frontend;
KwsRecognizer g_recognizer;
int16_t g_hop[MICRO40_FRAME_STEP];
float g_frame[MICRO40_NUM_MEL_BINS];
float g_posteriors[KWS_NUM_CLASSES];
uint32_t g_frames = 0;
tflite::MicroInterpreter* g_interpreter = nullptr;
// The states between frames (quantized bytes, exactly as the tensors hold them);
// state s at g_state_storage + kKwsStateOffset[s].
alignas(4) uint8_t g_state_storage[KWS_STATE_STORAGE_BYTES];

uint8_t* StateBytes(int s) { return g_state_storage + kKwsStateOffset[s]; }

TfLiteType DtypeOf(int code) {
  return code == KWS_DTYPE_INT8    ? kTfLiteInt8
         : code == KWS_DTYPE_INT16 ? kTfLiteInt16
                                   : kTfLiteFloat32;
}

bool SameScale(float a, float b) {
  return fabsf(a - b) <= 1e-6f * fabsf(b) || (a == 0.0f && b == 0.0f);
}

// Refuses a model that does not match model_settings.h, naming the mismatch.
bool CheckTensor(const TfLiteTensor* t, const char* what, TfLiteType type,
                 float scale, int zero_point, size_t bytes) {
  if (t == nullptr) {
    MicroPrintf("%s: no such tensor", what);
    return false;
  }
  if (t->type != type) {
    MicroPrintf("%s: model type %d, model_settings.h says %d", what, t->type, type);
    return false;
  }
  if (type != kTfLiteFloat32 &&
      (!SameScale(t->params.scale, scale) || t->params.zero_point != zero_point)) {
    MicroPrintf("%s: model scale/zero point %f/%d, model_settings.h %f/%d", what,
                static_cast<double>(t->params.scale), t->params.zero_point,
                static_cast<double>(scale), zero_point);
    return false;
  }
  if (bytes != 0 && t->bytes != bytes) {
    MicroPrintf("%s: model tensor has %d bytes, expected %d", what,
                static_cast<int>(t->bytes), static_cast<int>(bytes));
    return false;
  }
  return true;
}

int32_t Clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

// q = clamp(round_half_away(x / scale) + zero_point), as the Python and Java apps.
void QuantizeFrame(TfLiteTensor* input, const float* frame) {
  for (int i = 0; i < KWS_NUM_FEATURES; ++i) {
    const float x = frame[i] != frame[i] ? 0.0f : frame[i];  // NaN -> 0
    if (input->type == kTfLiteFloat32) {
      input->data.f[i] = x;
      continue;
    }
    const float v = roundf(x / KWS_INPUT_SCALE);
    const float clipped = v > 1e9f ? 1e9f : v < -1e9f ? -1e9f : v;
    const int32_t q = static_cast<int32_t>(clipped) + KWS_INPUT_ZERO_POINT;
    if (input->type == kTfLiteInt8) {
      input->data.int8[i] = static_cast<int8_t>(Clamp(q, -128, 127));
    } else {
      input->data.i16[i] = static_cast<int16_t>(Clamp(q, -32768, 32767));
    }
  }
}

float Dequantize(const TfLiteTensor* t, int i) {
  switch (t->type) {
    case kTfLiteInt8:
      return (t->data.int8[i] - KWS_OUTPUT_ZERO_POINT) * KWS_OUTPUT_SCALE;
    case kTfLiteInt16:
      return (t->data.i16[i] - KWS_OUTPUT_ZERO_POINT) * KWS_OUTPUT_SCALE;
    default:
      return t->data.f[i];
  }
}

// Every element of every state = its initial quantized value (quantized 0.0).
void ResetStates() {
  for (int s = 0; s < KWS_NUM_STATES; ++s) {
    const int n = kKwsStateBytes[s] / kKwsStateElementBytes[s];
    const int32_t v = kKwsStateInitialQuantized[s];
    uint8_t* dst = StateBytes(s);
    for (int i = 0; i < n; ++i) {
      if (kKwsStateElementBytes[s] == 1) {
        reinterpret_cast<int8_t*>(dst)[i] = static_cast<int8_t>(v);
      } else if (kKwsStateElementBytes[s] == 2) {
        reinterpret_cast<int16_t*>(dst)[i] = static_cast<int16_t>(v);
      } else {
        reinterpret_cast<float*>(dst)[i] = static_cast<float>(v);
      }
    }
  }
}

}  // namespace

// Builds the interpreter and checks the model against model_settings.h.
extern "C" bool KwsSetup() {
  tflite::InitializeTarget();
  const tflite::Model* model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("model schema %d, TFLM supports %d", static_cast<int>(model->version()),
                TFLITE_SCHEMA_VERSION);
    return false;
  }
  static tflite::MicroInterpreter interpreter(
      model, lmuformer_export::GetOpResolver(), g_arena, KWS_ARENA_BYTES);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("AllocateTensors failed: KWS_ARENA_BYTES=%d too small?", KWS_ARENA_BYTES);
    return false;
  }
  g_interpreter = &interpreter;
  if (interpreter.inputs_size() != 1 + KWS_NUM_STATES ||
      interpreter.outputs_size() != 1 + KWS_NUM_STATES) {
    MicroPrintf("model has %d inputs / %d outputs, model_settings.h says %d",
                static_cast<int>(interpreter.inputs_size()),
                static_cast<int>(interpreter.outputs_size()), 1 + KWS_NUM_STATES);
    return false;
  }
  bool ok = CheckTensor(interpreter.input(KWS_FRAME_INPUT_INDEX), "frame input",
                        DtypeOf(KWS_INPUT_DTYPE), KWS_INPUT_SCALE, KWS_INPUT_ZERO_POINT,
                        0) &&
            CheckTensor(interpreter.output(KWS_LOGITS_OUTPUT_INDEX), "logits output",
                        DtypeOf(KWS_OUTPUT_DTYPE), KWS_OUTPUT_SCALE,
                        KWS_OUTPUT_ZERO_POINT, 0);
  for (int s = 0; ok && s < KWS_NUM_STATES; ++s) {
    const TfLiteTensor* in = interpreter.input(kKwsStateInputIndex[s]);
    const TfLiteTensor* out = interpreter.output(kKwsStateOutputIndex[s]);
    const TfLiteType type = in != nullptr ? in->type : kTfLiteNoType;
    const float scale = in != nullptr ? in->params.scale : 0.0f;
    const int zero_point = in != nullptr ? in->params.zero_point : 0;
    // input and output must share dtype, size, scale and zero point (byte copy)
    ok = CheckTensor(in, kKwsStateNames[s], type, scale, zero_point,
                     static_cast<size_t>(kKwsStateBytes[s])) &&
         CheckTensor(out, kKwsStateNames[s], type, scale, zero_point,
                     static_cast<size_t>(kKwsStateBytes[s]));
  }
  if (!ok) return false;
  micro40_init(&g_frontend);
  if (kws_rc_init(&g_recognizer, KWS_NUM_CLASSES, kKwsLabelIgnored,
                  KWS_AVERAGE_WINDOW_MS, KWS_DETECTION_THRESHOLD, KWS_SUPPRESSION_MS,
                  KWS_MINIMUM_COUNT) != KWS_RC_OK) {
    MicroPrintf("bad smoothing settings");
    return false;
  }
  ResetStates();
  g_frames = 0;
  MicroPrintf("KWS ready: %d classes, %d states, arena %d of %d bytes used",
              KWS_NUM_CLASSES, KWS_NUM_STATES,
              static_cast<int>(interpreter.arena_used_bytes()), KWS_ARENA_BYTES);
  return true;
}

// One step of the model on one frontend frame; returns false on an Invoke error.
extern "C" bool KwsStep(const float* frame, float* posteriors) {
  tflite::MicroInterpreter& it = *g_interpreter;
  QuantizeFrame(it.input(KWS_FRAME_INPUT_INDEX), frame);
  for (int s = 0; s < KWS_NUM_STATES; ++s) {
    memcpy(it.input(kKwsStateInputIndex[s])->data.raw, StateBytes(s),
           static_cast<size_t>(kKwsStateBytes[s]));
  }
  if (it.Invoke() != kTfLiteOk) {
    MicroPrintf("Invoke failed at frame %d", static_cast<int>(g_frames));
    return false;
  }
  for (int s = 0; s < KWS_NUM_STATES; ++s) {
    memcpy(StateBytes(s), it.output(kKwsStateOutputIndex[s])->data.raw,
           static_cast<size_t>(kKwsStateBytes[s]));
  }
  const TfLiteTensor* logits = it.output(KWS_LOGITS_OUTPUT_INDEX);
  for (int c = 0; c < KWS_NUM_CLASSES; ++c) posteriors[c] = Dequantize(logits, c);
  kws_softmax(posteriors, KWS_NUM_CLASSES, posteriors);
  return true;
}

// Reads one hop, runs a frame when one is complete; false when audio has ended.
extern "C" bool KwsLoopOnce() {
  if (kws_board_read_audio(g_hop, MICRO40_FRAME_STEP) < 0) return false;
  if (!micro40_push_hop(&g_frontend, g_hop, g_frame)) return true;  // first hop
  if (!KwsStep(g_frame, g_posteriors)) return false;
  // Frame t ends at sample t * FRAME_STEP + FRAME_LENGTH (as the Python app).
  const uint32_t time_ms = static_cast<uint32_t>(
      (static_cast<uint64_t>(g_frames) * MICRO40_FRAME_STEP + MICRO40_FRAME_LENGTH) *
      1000u / MICRO40_SAMPLE_RATE);
  ++g_frames;
  KwsDetection detection;
  if (kws_rc_process(&g_recognizer, g_posteriors, time_ms, &detection) ==
      KWS_RC_DETECTION) {
    kws_board_report(kKwsLabels[detection.index], detection.score, detection.time_ms);
  }
  return true;
}

#ifndef KWS_NO_MAIN
int main() {
  if (!KwsSetup()) return 1;
  while (KwsLoopOnce()) {
  }
  return 0;
}
#endif
