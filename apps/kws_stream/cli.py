"""``lmuformer-stream``: stream a WAV file or the microphone through an exported model.

Usage::

    lmuformer-stream --model_dir DIR (--wav F.wav | --mic) [--png OUT.png]
        [--threshold 0.95] [--average_window_ms 700] [--suppression_ms 1000]
        [--minimum_count 10] [--chunk_ms 100] [--seconds 0] [--num_threads 1]

``DIR`` is an ``lmuformer-export`` folder (``metadata.json`` + ``model.tflite``). A WAV
at another rate is resampled to the frontend's rate and stereo is mixed down (both are
reported). Detections are printed with their time as they are found; ``--png`` saves
the posteriors over time with the detections marked. ``--mic`` needs the optional
``sounddevice`` package (PortAudio) and an input device.

Exit status: 0 on success, 1 on a runtime error (bad file, metadata mismatch, no
microphone), 2 on a usage error. Flags live in a private ``absl.flags.FlagValues``, so
this module can be imported beside other absl CLIs.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import flags

from lmuformer_keras.console import quiet_tensorflow
from lmuformer_keras.contract import MetadataError

from .audio import AudioFileError, read_wav
from .runner import KWSStream

PROG = "lmuformer-stream"
MIC_HISTORY_FRAMES = 30_000  # 10 minutes at a 20 ms hop, for the PNG

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "model_dir", None, "lmuformer-export output folder.", flag_values=FLAGS
)
flags.DEFINE_string("wav", None, "WAV file to stream.", flag_values=FLAGS)
flags.DEFINE_bool(
    "mic",
    False,
    "Stream the default microphone (needs sounddevice).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "png", None, "Save posteriors over time with detections here.", flag_values=FLAGS
)
flags.DEFINE_float(
    "threshold",
    None,
    "Detection threshold on the averaged posterior, in (0, 1] (default: the "
    "model's metadata smoothing, else 0.95).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "average_window_ms",
    None,
    "Posterior averaging window in ms (default: the model's, else 700).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "suppression_ms",
    None,
    "Minimum time between two detections of one label in ms (default: the "
    "model's, else 1000).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "minimum_count",
    None,
    "Minimum frames in the window before deciding (default: the model's, else 10).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "chunk_ms",
    100.0,
    "WAV: audio chunk fed per push (results do not depend on it).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "seconds", 0.0, "Mic: stop after this many seconds (0: Ctrl-C).", flag_values=FLAGS
)
flags.DEFINE_integer("num_threads", 1, "Interpreter threads.", flag_values=FLAGS)


class CliError(Exception):
    """A runtime error reported as ``lmuformer-stream: error: ...`` (exit 1)."""


def _say(text: str) -> None:
    print(text, flush=True)


def _make_stream(history_frames: int | None) -> KWSStream:
    given = {
        "average_window_ms": FLAGS.average_window_ms,
        "detection_threshold": FLAGS.threshold,
        "suppression_ms": FLAGS.suppression_ms,
        "minimum_count": FLAGS.minimum_count,
    }
    return KWSStream.from_dir(
        FLAGS.model_dir,
        num_threads=FLAGS.num_threads,
        history_frames=history_frames,
        **{k: v for k, v in given.items() if v is not None},
    )


def _stream_wav(stream: KWSStream, path: str) -> None:
    audio = read_wav(path, target_rate=stream.sample_rate)
    _say(
        f"{path}: {audio.source_rate} Hz, {audio.source_channels} channel(s), "
        f"{audio.source_bits}-bit, {audio.seconds:.2f} s"
    )
    for note in audio.notes:
        _say(f"note: {note}")
    chunk = max(1, int(round(FLAGS.chunk_ms * stream.sample_rate / 1000.0)))
    x = audio.samples
    for start in range(0, x.shape[0], chunk):
        for detection in stream.push(x[start : start + chunk]):
            _say(f"detected {detection}")


def _stream_mic(stream: KWSStream) -> None:
    try:
        import sounddevice as sd
    except (ImportError, OSError) as error:
        raise CliError(
            "--mic needs the optional 'sounddevice' package and the PortAudio library "
            f"(pip install sounddevice) ({type(error).__name__}: {error}); or stream "
            "a file with --wav"
        ) from error
    import queue

    rate = stream.sample_rate
    try:
        sd.check_input_settings(samplerate=rate, channels=1, dtype="int16")
    except Exception as error:  # PortAudio raises several types
        raise CliError(
            f"no usable microphone for {rate} Hz mono 16-bit input ({error}); or "
            "stream a file with --wav"
        ) from error
    chunks: queue.Queue = queue.Queue()
    overflows = [0]

    def callback(indata, frames, time_info, status):  # PortAudio thread
        if status:
            overflows[0] += 1
        chunks.put(np.array(indata[:, 0], dtype=np.int16))

    hop = int(stream.frontend.params["frame_step"])
    _say(f"listening at {rate} Hz (Ctrl-C to stop) ...")
    start = time.monotonic()
    try:
        with sd.InputStream(
            samplerate=rate, channels=1, dtype="int16", blocksize=hop, callback=callback
        ):
            while FLAGS.seconds <= 0 or time.monotonic() - start < FLAGS.seconds:
                try:
                    data = chunks.get(timeout=0.5)
                except queue.Empty:
                    continue
                for detection in stream.push(data):
                    _say(f"detected {detection}")
    except KeyboardInterrupt:
        _say("stopped")
    except Exception as error:  # PortAudio errors while opening / running
        raise CliError(f"microphone error: {error}") from error
    if overflows[0]:
        _say(f"note: {overflows[0]} audio buffer over/underflow(s) reported")


def _parse(argv: list[str]) -> list[str] | None:
    FLAGS.unparse_flags()
    if any(a in ("-h", "--help", "-help") for a in argv[1:]):
        print(__doc__)
        print(FLAGS.get_help())
        return None
    return FLAGS(argv)


def run(argv: list[str]) -> int:
    """Runs the CLI on ``argv`` (``argv[0]``: program name); returns the exit code."""
    quiet_tensorflow()  # no TensorFlow/absl start-up lines
    try:
        rest = _parse(list(argv))
    except flags.Error as error:
        print(f"{PROG}: usage error: {error}", file=sys.stderr)
        return 2
    if rest is None:
        return 0
    if len(rest) > 1:
        print(f"{PROG}: usage error: unexpected arguments {rest[1:]}", file=sys.stderr)
        return 2
    if not FLAGS.model_dir:
        print(f"{PROG}: usage error: --model_dir is required", file=sys.stderr)
        return 2
    if bool(FLAGS.wav) == bool(FLAGS.mic):
        print(
            f"{PROG}: usage error: give exactly one of --wav or --mic", file=sys.stderr
        )
        return 2
    try:
        stream = _make_stream(None if FLAGS.wav else MIC_HISTORY_FRAMES)
        labels = ", ".join(stream.labels)
        _say(
            f"model {os.path.join(FLAGS.model_dir, '')}: {len(stream.labels)} labels "
            f"({labels}); frontend {stream.frontend.name}, hop "
            f"{stream.frontend.frame_hop_ms:g} ms"
        )
        if FLAGS.wav:
            _stream_wav(stream, FLAGS.wav)
        else:
            _stream_mic(stream)
        seconds = stream.samples / float(stream.sample_rate)
        _say(
            f"{stream.frames} frames ({seconds:.2f} s of audio), "
            f"{len(stream.detections)} detection(s)"
        )
        if FLAGS.png:
            from .plot import save_posteriors_png

            times, posteriors, smoothed = stream.history()
            source = FLAGS.wav or "microphone"
            path = save_posteriors_png(
                FLAGS.png,
                times,
                posteriors,
                smoothed,
                stream.labels,
                stream.detections,
                threshold=stream.smoother.detection_threshold,
                title=f"{os.path.basename(source)}: "
                f"{len(stream.detections)} detection(s)",
            )
            _say(f"saved {path}")
    except (
        AudioFileError,
        MetadataError,
        FileNotFoundError,
        CliError,
        ValueError,
    ) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv))


if __name__ == "__main__":
    main()
