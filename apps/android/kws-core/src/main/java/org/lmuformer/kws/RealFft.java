package org.lmuformer.kws;

/**
 * Power spectrum of a real signal with a radix-2 FFT (double precision).
 *
 * <p>The n real samples are read as n / 2 complex values z[k] = x[2k] + i x[2k+1]; an
 * in-place iterative radix-2 complex FFT gives Z, and X[k] = (Z[k] + conj Z[M-k]) / 2 -
 * i e^{-2 pi i k / n} (Z[k] - conj Z[M-k]) / 2 with M = n / 2. The same method as
 * apps/mcu/micro40_frontend.c (which runs it in float).
 */
public final class RealFft {
  private final int n;
  private final double[] cos;
  private final double[] sin;
  private final double[] buf;

  /** @param n transform length, a power of two >= 4 */
  public RealFft(int n) {
    if (n < 4 || (n & (n - 1)) != 0) {
      throw new IllegalArgumentException("RealFft: n must be a power of 2 >= 4, got n=" + n);
    }
    this.n = n;
    cos = new double[n / 2];
    sin = new double[n / 2];
    for (int k = 0; k < n / 2; ++k) {
      cos[k] = Math.cos(2.0 * Math.PI * k / n);
      sin[k] = Math.sin(2.0 * Math.PI * k / n);
    }
    buf = new double[n];
  }

  public int size() {
    return n;
  }

  /**
   * |X[k]|^2 for k = 0 .. n / 2 of x zero-padded to n samples.
   *
   * @param x input samples (at most n; not modified)
   * @param length samples of x to use
   * @param power output, at least n / 2 + 1 values
   */
  public void powerSpectrum(double[] x, int length, double[] power) {
    if (length > n) throw new IllegalArgumentException("RealFft: length > n");
    System.arraycopy(x, 0, buf, 0, length);
    java.util.Arrays.fill(buf, length, n, 0.0);
    complexFftHalf();
    final int m = n / 2;
    double r0 = buf[0];
    double i0 = buf[1];
    power[0] = (r0 + i0) * (r0 + i0);
    power[m] = (r0 - i0) * (r0 - i0);
    for (int k = 1; k < m; ++k) {
      double zr = buf[2 * k];
      double zi = buf[2 * k + 1];
      double cr = buf[2 * (m - k)];
      double ci = -buf[2 * (m - k) + 1];
      double er = 0.5 * (zr + cr);
      double ei = 0.5 * (zi + ci);
      double or = 0.5 * (zi - ci);
      double oi = -0.5 * (zr - cr);
      double c = cos[k];
      double s = sin[k];
      double xr = er + c * or + s * oi;
      double xi = ei + c * oi - s * or;
      power[k] = xr * xr + xi * xi;
    }
  }

  private void complexFftHalf() {
    final int m = n / 2;
    for (int i = 1, j = 0; i < m; ++i) {
      int bit = m >> 1;
      for (; (j & bit) != 0; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) {
        double tr = buf[2 * i];
        double ti = buf[2 * i + 1];
        buf[2 * i] = buf[2 * j];
        buf[2 * i + 1] = buf[2 * j + 1];
        buf[2 * j] = tr;
        buf[2 * j + 1] = ti;
      }
    }
    for (int len = 2; len <= m; len <<= 1) {
      int half = len >> 1;
      int stride = n / len;
      for (int start = 0; start < m; start += len) {
        for (int k = 0; k < half; ++k) {
          double wr = cos[k * stride];
          double wi = -sin[k * stride];
          int a = 2 * (start + k);
          int b = 2 * (start + k + half);
          double vr = buf[b] * wr - buf[b + 1] * wi;
          double vi = buf[b] * wi + buf[b + 1] * wr;
          buf[b] = buf[a] - vr;
          buf[b + 1] = buf[a + 1] - vi;
          buf[a] += vr;
          buf[a + 1] += vi;
        }
      }
    }
  }
}
