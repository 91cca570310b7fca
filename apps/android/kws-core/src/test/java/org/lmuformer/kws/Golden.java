package org.lmuformer.kws;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;

/** Loads the golden vectors written by apps/android/make_golden.py (-Dkws.golden=DIR). */
final class Golden {
  private static Map<String, Object> cache;

  private Golden() {}

  static Path dir() {
    String dir = System.getProperty("kws.golden");
    if (dir == null) {
      throw new IllegalStateException(
          "set -Dkws.golden=DIR to the output of apps/android/make_golden.py");
    }
    return Paths.get(dir);
  }

  static synchronized Map<String, Object> data() throws IOException {
    if (cache == null) cache = Json.parseObject(read(dir().resolve("golden.json")));
    return cache;
  }

  static String read(Path path) throws IOException {
    return new String(Files.readAllBytes(path), StandardCharsets.UTF_8);
  }

  static ModelMetadata metadata() throws IOException {
    return ModelMetadata.parse(read(dir().resolve("metadata.json")));
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> map(Object o) {
    return (Map<String, Object>) o;
  }

  @SuppressWarnings("unchecked")
  static List<Object> list(Object o) {
    return (List<Object>) o;
  }
}
