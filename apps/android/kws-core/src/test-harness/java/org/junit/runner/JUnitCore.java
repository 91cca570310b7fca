package org.junit.runner;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import org.junit.Test;

/**
 * Minimal stand-in for JUnit 4's command-line runner: runs every public {@code @Test}
 * method of the named classes, prints "OK (N tests)" or the failures, and exits 1 on a
 * failure (used only when the junit4 jar is not installed).
 */
public final class JUnitCore {
  private JUnitCore() {}

  public static void main(String... classNames) throws Exception {
    int run = 0;
    int failed = 0;
    System.out.println("kws-core test harness (JUnit 4 stand-in)");
    for (String name : classNames) {
      Class<?> cls = Class.forName(name);
      for (Method m : cls.getMethods()) {
        Test test = m.getAnnotation(Test.class);
        if (test == null || Modifier.isStatic(m.getModifiers())) continue;
        ++run;
        Throwable error = null;
        try {
          m.invoke(cls.getDeclaredConstructor().newInstance());
          if (test.expected() != Test.None.class) {
            error = new AssertionError("expected " + test.expected().getName());
          }
        } catch (InvocationTargetException e) {
          Throwable cause = e.getCause();
          if (!test.expected().isInstance(cause)) error = cause;
        }
        if (error != null) {
          ++failed;
          System.out.println(failed + ") " + name + "." + m.getName() + ": " + error);
          error.printStackTrace(System.out);
        } else {
          System.out.print(".");
        }
      }
    }
    System.out.println();
    if (failed == 0) {
      System.out.println("OK (" + run + " tests)");
    } else {
      System.out.println("FAILURES!!! Tests run: " + run + ",  Failures: " + failed);
      System.exit(1);
    }
  }
}
