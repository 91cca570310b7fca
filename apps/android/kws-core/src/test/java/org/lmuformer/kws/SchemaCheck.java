package org.lmuformer.kws;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Checks a JSON value against metadata.schema.json: the subset of JSON Schema (draft
 * 2020-12) that lmuformer_keras.contract generates. A keyword outside that subset is an
 * error, so a schema that grows new rules cannot pass unchecked.
 */
final class SchemaCheck {
  private static final Set<String> IGNORED =
      new HashSet<>(Arrays.asList("$schema", "$id", "$defs", "title", "description"));
  private final Map<String, Object> root;

  SchemaCheck(Map<String, Object> root) {
    this.root = root;
  }

  /** Throws AssertionError naming the path of the first value the schema refuses. */
  void check(Object value) {
    check(root, value, "$");
  }

  private Map<String, Object> resolve(String ref) {
    if (!ref.startsWith("#/$defs/")) throw new AssertionError("unsupported $ref " + ref);
    return Golden.map(Json.obj(root, "$defs").get(ref.substring("#/$defs/".length())));
  }

  private static boolean isType(String type, Object v) {
    switch (type) {
      case "null":
        return v == null;
      case "object":
        return v instanceof Map;
      case "array":
        return v instanceof List;
      case "string":
        return v instanceof String;
      case "number":
        return v instanceof Number;
      case "integer":
        return v instanceof Number
            && ((Number) v).doubleValue() == Math.rint(((Number) v).doubleValue());
      default:
        throw new AssertionError("unsupported type " + type);
    }
  }

  private static boolean equal(Object a, Object b) {
    if (a instanceof Number && b instanceof Number) {
      return ((Number) a).doubleValue() == ((Number) b).doubleValue();
    }
    return a == null ? b == null : a.equals(b);
  }

  private void check(Map<String, Object> schema, Object v, String path) {
    for (Map.Entry<String, Object> rule : schema.entrySet()) {
      String key = rule.getKey();
      Object arg = rule.getValue();
      if (IGNORED.contains(key)) continue;
      switch (key) {
        case "$ref":
          check(resolve((String) arg), v, path);
          break;
        case "anyOf":
          {
            AssertionError last = null;
            boolean ok = false;
            for (Object option : (List<?>) arg) {
              try {
                check(Golden.map(option), v, path);
                ok = true;
                break;
              } catch (AssertionError e) {
                last = e;
              }
            }
            if (!ok) throw new AssertionError(path + ": no anyOf option matches (" + last + ")");
            break;
          }
        case "type":
          if (!isType((String) arg, v)) throw new AssertionError(path + ": not " + arg + ": " + v);
          break;
        case "const":
          if (!equal(arg, v)) throw new AssertionError(path + ": " + v + " is not " + arg);
          break;
        case "enum":
          {
            boolean found = false;
            for (Object option : (List<?>) arg) found |= equal(option, v);
            if (!found) throw new AssertionError(path + ": " + v + " is not one of " + arg);
            break;
          }
        case "minimum":
          if (v instanceof Number && ((Number) v).doubleValue() < ((Number) arg).doubleValue()) {
            throw new AssertionError(path + ": " + v + " < " + arg);
          }
          break;
        case "exclusiveMinimum":
          if (v instanceof Number && ((Number) v).doubleValue() <= ((Number) arg).doubleValue()) {
            throw new AssertionError(path + ": " + v + " <= " + arg);
          }
          break;
        case "minLength":
          if (v instanceof String && ((String) v).length() < ((Number) arg).intValue()) {
            throw new AssertionError(path + ": shorter than " + arg);
          }
          break;
        case "minItems":
          if (v instanceof List && ((List<?>) v).size() < ((Number) arg).intValue()) {
            throw new AssertionError(path + ": fewer than " + arg + " items");
          }
          break;
        case "prefixItems":
          if (v instanceof List) {
            List<?> items = (List<?>) v;
            List<?> prefix = (List<?>) arg;
            for (int i = 0; i < prefix.size() && i < items.size(); ++i) {
              check(Golden.map(prefix.get(i)), items.get(i), path + "[" + i + "]");
            }
          }
          break;
        case "items":
          if (v instanceof List) {
            List<?> items = (List<?>) v;
            Object prefix = schema.get("prefixItems");
            int start = prefix == null ? 0 : ((List<?>) prefix).size();
            for (int i = start; i < items.size(); ++i) {
              check(Golden.map(arg), items.get(i), path + "[" + i + "]");
            }
          }
          break;
        case "properties":
          if (v instanceof Map) {
            Map<String, Object> object = Golden.map(v);
            for (Map.Entry<String, Object> p : Golden.map(arg).entrySet()) {
              if (object.containsKey(p.getKey())) {
                check(Golden.map(p.getValue()), object.get(p.getKey()), path + "." + p.getKey());
              }
            }
          }
          break;
        case "required":
          if (v instanceof Map) {
            for (Object name : (List<?>) arg) {
              if (!Golden.map(v).containsKey(name)) {
                throw new AssertionError(path + ": missing required key '" + name + "'");
              }
            }
          }
          break;
        case "additionalProperties":
          if (v instanceof Map && Boolean.FALSE.equals(arg)) {
            Set<String> known = Golden.map(schema.get("properties")).keySet();
            for (String name : Golden.map(v).keySet()) {
              if (!known.contains(name)) throw new AssertionError(path + ": unknown key " + name);
            }
          }
          break;
        default:
          throw new AssertionError("schema keyword '" + key + "' is not supported here");
      }
    }
  }
}
