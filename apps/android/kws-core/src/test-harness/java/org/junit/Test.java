package org.junit;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Minimal stand-in for JUnit 4's {@code @Test}, used by tests/test_apps_android.py only
 * when the junit4 jar is not installed (the real JUnit is used otherwise).
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface Test {
  Class<? extends Throwable> expected() default None.class;

  /** No exception expected. */
  final class None extends Throwable {
    private static final long serialVersionUID = 1L;

    private None() {}
  }
}
