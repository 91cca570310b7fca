package org.lmuformer.kws;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
  @Test
  public void parsesNestedValues() {
    Map<String, Object> m =
        Json.parseObject(
            " {\"a\": [1, -2.5e-3, true, false, null], \"b\": {\"c\": \"x\\\"y\\u00e9\\n\"},"
                + " \"big\": 12345678901234, \"e\": []} ");
    List<Object> a = Json.list(m, "a");
    assertEquals(1L, a.get(0));
    assertEquals(-2.5e-3, (Double) a.get(1), 0.0);
    assertEquals(Boolean.TRUE, a.get(2));
    assertNull(a.get(4));
    assertEquals("x\"y\u00e9\n", Json.str(Json.obj(m, "b"), "c"));
    assertEquals(12345678901234L, m.get("big"));
    assertTrue(Json.list(m, "e").isEmpty());
  }

  @Test
  public void rejectsBadJson() {
    for (String bad : new String[] {"{", "{\"a\" 1}", "[1,]", "{\"a\": tru}", "[1] x", "\"\\q\""}) {
      try {
        Json.parse(bad);
        fail("accepted " + bad);
      } catch (IllegalArgumentException expected) {
        assertTrue(expected.getMessage().startsWith("JSON:"));
      }
    }
  }
}
