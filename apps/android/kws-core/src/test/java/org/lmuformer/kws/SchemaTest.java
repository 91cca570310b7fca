package org.lmuformer.kws;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.Test;

/**
 * ModelMetadata against metadata.schema.json, the JSON Schema that lmuformer_keras.contract
 * generates from the same key lists the Python exporter writes and reads.
 */
public class SchemaTest {
  private static Map<String, Object> def(Map<String, Object> schema, String name) {
    return Golden.map(Json.obj(schema, "$defs").get(name));
  }

  private static TreeSet<String> keys(Map<String, Object> objectSchema) {
    return new TreeSet<>(Json.obj(objectSchema, "properties").keySet());
  }

  private static TreeSet<String> required(Map<String, Object> objectSchema) {
    TreeSet<String> out = new TreeSet<>();
    for (Object o : Json.list(objectSchema, "required")) out.add((String) o);
    return out;
  }

  @Test
  public void theExportsMetadataMatchesTheSchema() throws Exception {
    Map<String, Object> schema = Golden.schema();
    assertEquals((long) ModelMetadata.FORMAT_VERSION,
        ((Number) Json.obj(Json.obj(schema, "properties"), "format_version").get("const"))
            .longValue());
    new SchemaCheck(schema).check(Json.parse(Golden.read(Golden.dir().resolve("metadata.json"))));
  }

  @Test
  public void readerKeysAreTheSchemas() throws Exception {
    Map<String, Object> schema = Golden.schema();
    assertEquals(keys(schema), new TreeSet<>(ModelMetadata.KEYS));
    assertEquals(required(schema), new TreeSet<>(ModelMetadata.REQUIRED_KEYS));
    assertEquals(keys(def(schema, "tensor")), new TreeSet<>(ModelMetadata.TENSOR_KEYS));
    assertEquals(keys(def(schema, "state")), new TreeSet<>(ModelMetadata.STATE_KEYS));
    assertEquals(keys(def(schema, "frontend")), new TreeSet<>(ModelMetadata.FRONTEND_KEYS));
    List<Object> dtypes =
        Json.list(Json.obj(Json.obj(def(schema, "tensor"), "properties"), "dtype"), "enum");
    for (ModelMetadata.DType d : ModelMetadata.DType.values()) {
      assertTrue(d.jsonName() + " not in the schema", dtypes.contains(d.jsonName()));
    }
  }

  @Test
  public void theSchemaRefusesWhatTheReaderRefuses() throws Exception {
    Map<String, Object> schema = Golden.schema();
    SchemaCheck check = new SchemaCheck(schema);
    List<String> edits = new ArrayList<>(Arrays.asList("frame_input_index", "no_frame"));
    for (String edit : edits) {
      Map<String, Object> m =
          Json.parseObject(Golden.read(Golden.dir().resolve("metadata.json")));
      if (edit.equals("no_frame")) {
        m.remove("frame");
      } else {
        m.put(edit, 0L);
      }
      boolean refused = false;
      try {
        check.check(m);
      } catch (AssertionError expected) {
        refused = true; // as ModelMetadata.fromMap refuses it
      }
      assertTrue("the schema accepted metadata with edit " + edit, refused);
      try {
        ModelMetadata.fromMap(m);
        fail("ModelMetadata accepted metadata with edit " + edit);
      } catch (IllegalArgumentException expected) {
        // refused
      }
    }
  }
}
