package org.junit;

/** Minimal stand-in for JUnit 4's Assert (the overloads kws-core's tests use). */
public final class Assert {
  private Assert() {}

  public static void fail(String message) {
    throw new AssertionError(message);
  }

  public static void assertTrue(boolean condition) {
    assertTrue(null, condition);
  }

  public static void assertTrue(String message, boolean condition) {
    if (!condition) fail(message == null ? "expected true" : message);
  }

  public static void assertFalse(boolean condition) {
    assertTrue(null, !condition);
  }

  public static void assertNull(Object o) {
    if (o != null) fail("expected null, got " + o);
  }

  public static void assertNotNull(Object o) {
    if (o == null) fail("expected not null");
  }

  public static void assertEquals(Object expected, Object actual) {
    assertEquals(null, expected, actual);
  }

  public static void assertEquals(String message, Object expected, Object actual) {
    boolean same = expected == null ? actual == null : expected.equals(actual);
    if (!same) fail(prefix(message) + "expected:<" + expected + "> but was:<" + actual + ">");
  }

  public static void assertEquals(long expected, long actual) {
    assertEquals(null, expected, actual);
  }

  public static void assertEquals(String message, long expected, long actual) {
    if (expected != actual) {
      fail(prefix(message) + "expected:<" + expected + "> but was:<" + actual + ">");
    }
  }

  public static void assertEquals(double expected, double actual, double delta) {
    assertEquals(null, expected, actual, delta);
  }

  public static void assertEquals(String message, double expected, double actual, double delta) {
    if (Double.compare(expected, actual) != 0 && !(Math.abs(expected - actual) <= delta)) {
      fail(prefix(message) + "expected:<" + expected + "> but was:<" + actual + ">");
    }
  }

  private static String prefix(String message) {
    return message == null ? "" : message + " ";
  }
}
