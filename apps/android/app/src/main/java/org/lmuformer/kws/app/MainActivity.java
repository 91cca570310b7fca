package org.lmuformer.kws.app;

import android.Manifest;
import android.app.Activity;
import android.content.pm.PackageManager;
import android.media.AudioFormat;
import android.media.AudioRecord;
import android.media.MediaRecorder;
import android.os.Bundle;
import android.util.Log;
import android.widget.TextView;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import org.lmuformer.kws.Detection;
import org.lmuformer.kws.KwsPipeline;
import org.lmuformer.kws.ModelMetadata;

/**
 * Listens to the microphone (AudioRecord, 16 kHz mono 16-bit) and shows the last detected
 * keyword. The model and its metadata come from the APK assets (model.tflite,
 * metadata.json, copied from an lmuformer-export folder); the frontend, state loop and
 * smoothing are kws-core's, the same as the Python and C apps.
 */
public class MainActivity extends Activity {
  private static final String TAG = "LmuformerKws";
  private static final int REQUEST_RECORD_AUDIO = 1;

  private TextView word;
  private TextView status;
  private volatile boolean running;
  private Thread worker;
  private LiteRtStepInterpreter interpreter;
  private KwsPipeline pipeline;

  @Override
  protected void onCreate(Bundle savedInstanceState) {
    super.onCreate(savedInstanceState);
    setContentView(R.layout.activity_main);
    word = findViewById(R.id.word);
    status = findViewById(R.id.status);
    try {
      ModelMetadata meta = ModelMetadata.parse(readAsset("metadata.json"));
      interpreter =
          new LiteRtStepInterpreter(LiteRtStepInterpreter.mapAsset(this, "model.tflite"), meta);
      pipeline = new KwsPipeline(meta, interpreter);
      status.setText(
          String.format(
              Locale.ROOT,
              "%d labels, %d state(s), %.0f ms hop",
              meta.numClasses,
              meta.states.size(),
              meta.frameHopMs));
    } catch (IOException | IllegalArgumentException e) {
      Log.e(TAG, "cannot load the model", e);
      status.setText("Cannot load the model: " + e.getMessage());
    }
  }

  @Override
  protected void onResume() {
    super.onResume();
    if (pipeline == null) return;
    if (checkSelfPermission(Manifest.permission.RECORD_AUDIO)
        == PackageManager.PERMISSION_GRANTED) {
      startListening();
    } else {
      requestPermissions(new String[] {Manifest.permission.RECORD_AUDIO}, REQUEST_RECORD_AUDIO);
    }
  }

  @Override
  public void onRequestPermissionsResult(int requestCode, String[] permissions, int[] results) {
    if (requestCode != REQUEST_RECORD_AUDIO) return;
    if (results.length > 0 && results[0] == PackageManager.PERMISSION_GRANTED) {
      startListening();
    } else {
      status.setText(R.string.no_permission);
    }
  }

  @Override
  protected void onPause() {
    stopListening();
    super.onPause();
  }

  @Override
  protected void onDestroy() {
    stopListening();
    if (interpreter != null) interpreter.close();
    super.onDestroy();
  }

  private String readAsset(String name) throws IOException {
    try (InputStream in = getAssets().open(name)) {
      ByteArrayOutputStream buffer = new ByteArrayOutputStream();
      byte[] chunk = new byte[8192];
      for (int n; (n = in.read(chunk)) > 0; ) buffer.write(chunk, 0, n);
      return new String(buffer.toByteArray(), StandardCharsets.UTF_8);
    }
  }

  private synchronized void startListening() {
    if (running) return;
    running = true;
    pipeline.reset();
    worker = new Thread(this::listen, "kws-audio");
    worker.start();
  }

  private synchronized void stopListening() {
    running = false;
    if (worker != null) {
      try {
        worker.join(1000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      worker = null;
    }
  }

  /** Audio thread: one hop at a time through the pipeline. */
  private void listen() {
    int rate = pipeline.frontend().sampleRate();
    int hop = pipeline.frontend().frameStep();
    int minBytes =
        AudioRecord.getMinBufferSize(
            rate, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_16BIT);
    AudioRecord record;
    try {
      record =
          new AudioRecord(
              MediaRecorder.AudioSource.VOICE_RECOGNITION,
              rate,
              AudioFormat.CHANNEL_IN_MONO,
              AudioFormat.ENCODING_PCM_16BIT,
              Math.max(minBytes, 16 * hop * 2));
    } catch (SecurityException | IllegalArgumentException e) {
      showStatus("Cannot open the microphone: " + e.getMessage());
      return;
    }
    if (record.getState() != AudioRecord.STATE_INITIALIZED) {
      showStatus("Cannot open the microphone at " + rate + " Hz mono");
      record.release();
      return;
    }
    short[] samples = new short[hop];
    record.startRecording();
    showStatus("Listening…");
    try {
      while (running) {
        int n = record.read(samples, 0, samples.length);
        if (n < 0) {
          showStatus("Microphone error " + n);
          break;
        }
        for (Detection d : pipeline.push(samples, 0, n)) {
          Log.i(TAG, "detected " + d);
          runOnUiThread(
              () ->
                  word.setText(String.format(Locale.ROOT, "%s\n%.2f", d.label, d.score)));
        }
      }
    } finally {
      record.stop();
      record.release();
    }
  }

  private void showStatus(String text) {
    runOnUiThread(() -> status.setText(text));
  }
}
