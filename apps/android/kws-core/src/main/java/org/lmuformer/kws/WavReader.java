package org.lmuformer.kws;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Reads a 16-bit PCM mono WAV (RIFF) into int16 samples; refuses anything else. */
public final class WavReader {
  private WavReader() {}

  /** The samples; {@code rate[0]} receives the sample rate when rate is not null. */
  public static short[] read(Path path, int[] rate) throws IOException {
    byte[] data = Files.readAllBytes(path);
    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    if (data.length < 12
        || b.getInt(0) != 0x46464952 /* RIFF */
        || b.getInt(8) != 0x45564157 /* WAVE */) {
      throw new IOException(path + ": not a RIFF/WAVE file");
    }
    int pos = 12;
    int format = -1;
    int channels = 0;
    int bits = 0;
    int sampleRate = 0;
    while (pos + 8 <= data.length) {
      int id = b.getInt(pos);
      int size = b.getInt(pos + 4);
      int body = pos + 8;
      if (size < 0 || body + size > data.length) throw new IOException(path + ": truncated chunk");
      if (id == 0x20746d66 /* "fmt " */) {
        format = b.getShort(body) & 0xffff;
        channels = b.getShort(body + 2);
        sampleRate = b.getInt(body + 4);
        bits = b.getShort(body + 14);
      } else if (id == 0x61746164 /* "data" */) {
        if (format != 1 || channels != 1 || bits != 16) {
          throw new IOException(
              path + ": need 16-bit PCM mono, got format " + format + ", " + channels
                  + " channel(s), " + bits + " bits");
        }
        short[] out = new short[size / 2];
        for (int i = 0; i < out.length; ++i) out[i] = b.getShort(body + 2 * i);
        if (rate != null) rate[0] = sampleRate;
        return out;
      }
      pos = body + size + (size & 1);
    }
    throw new IOException(path + ": no data chunk");
  }
}
