package org.lmuformer.kws;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A minimal JSON reader (RFC 8259) for metadata.json and test vectors, so kws-core
 * needs no library (org.json is not on the plain JVM).
 *
 * <p>Objects become {@code LinkedHashMap<String, Object>}, arrays {@code
 * ArrayList<Object>}, numbers {@code Long} (integers) or {@code Double}, plus {@code
 * String}, {@code Boolean} and {@code null}. Errors throw {@link
 * IllegalArgumentException} with the character offset.
 */
public final class Json {
  private final String text;
  private int pos;

  private Json(String text) {
    this.text = text;
  }

  /** Parses one JSON value (surrounding whitespace allowed). */
  public static Object parse(String text) {
    Json p = new Json(text);
    p.skipSpace();
    Object value = p.value();
    p.skipSpace();
    if (p.pos != text.length()) throw p.error("trailing characters");
    return value;
  }

  /** Parses a JSON object. */
  @SuppressWarnings("unchecked")
  public static Map<String, Object> parseObject(String text) {
    Object value = parse(text);
    if (!(value instanceof Map)) throw new IllegalArgumentException("JSON: not an object");
    return (Map<String, Object>) value;
  }

  private IllegalArgumentException error(String what) {
    return new IllegalArgumentException("JSON: " + what + " at offset " + pos);
  }

  private void skipSpace() {
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos;
    }
  }

  private Object value() {
    if (pos >= text.length()) throw error("unexpected end");
    char c = text.charAt(pos);
    switch (c) {
      case '{':
        return object();
      case '[':
        return array();
      case '"':
        return string();
      case 't':
        return literal("true", Boolean.TRUE);
      case 'f':
        return literal("false", Boolean.FALSE);
      case 'n':
        return literal("null", null);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        throw error("unexpected character '" + c + "'");
    }
  }

  private Object literal(String word, Object value) {
    if (!text.startsWith(word, pos)) throw error("bad literal");
    pos += word.length();
    return value;
  }

  private Map<String, Object> object() {
    Map<String, Object> map = new LinkedHashMap<>();
    ++pos;
    skipSpace();
    if (peek() == '}') {
      ++pos;
      return map;
    }
    while (true) {
      skipSpace();
      if (peek() != '"') throw error("expected a string key");
      String key = string();
      skipSpace();
      expect(':');
      skipSpace();
      map.put(key, value());
      skipSpace();
      char c = next();
      if (c == '}') return map;
      if (c != ',') throw error("expected ',' or '}'");
    }
  }

  private List<Object> array() {
    List<Object> list = new ArrayList<>();
    ++pos;
    skipSpace();
    if (peek() == ']') {
      ++pos;
      return list;
    }
    while (true) {
      skipSpace();
      list.add(value());
      skipSpace();
      char c = next();
      if (c == ']') return list;
      if (c != ',') throw error("expected ',' or ']'");
    }
  }

  private String string() {
    expect('"');
    StringBuilder sb = new StringBuilder();
    while (true) {
      char c = next();
      if (c == '"') return sb.toString();
      if (c < 0x20) throw error("control character in string");
      if (c != '\\') {
        sb.append(c);
        continue;
      }
      char e = next();
      switch (e) {
        case '"':
        case '\\':
        case '/':
          sb.append(e);
          break;
        case 'b':
          sb.append('\b');
          break;
        case 'f':
          sb.append('\f');
          break;
        case 'n':
          sb.append('\n');
          break;
        case 'r':
          sb.append('\r');
          break;
        case 't':
          sb.append('\t');
          break;
        case 'u':
          if (pos + 4 > text.length()) throw error("bad \\u escape");
          try {
            sb.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
          } catch (NumberFormatException ex) {
            throw error("bad \\u escape");
          }
          pos += 4;
          break;
        default:
          throw error("bad escape '\\" + e + "'");
      }
    }
  }

  private Object number() {
    int start = pos;
    boolean integral = true;
    if (peek() == '-') ++pos;
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (c >= '0' && c <= '9') {
        ++pos;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        integral = false;
        ++pos;
      } else {
        break;
      }
    }
    String s = text.substring(start, pos);
    try {
      if (integral) {
        try {
          return Long.parseLong(s);
        } catch (NumberFormatException tooBig) {
          return Double.parseDouble(s);
        }
      }
      return Double.parseDouble(s);
    } catch (NumberFormatException ex) {
      pos = start;
      throw error("bad number '" + s + "'");
    }
  }

  private char peek() {
    if (pos >= text.length()) throw error("unexpected end");
    return text.charAt(pos);
  }

  private char next() {
    char c = peek();
    ++pos;
    return c;
  }

  private void expect(char c) {
    if (next() != c) {
      --pos;
      throw error("expected '" + c + "'");
    }
  }

  // ------------------------------------------------------------- typed access
  /** {@code map.get(key)} as a Map, or an exception naming the key. */
  @SuppressWarnings("unchecked")
  public static Map<String, Object> obj(Map<String, Object> map, String key) {
    Object v = require(map, key);
    if (!(v instanceof Map)) throw new IllegalArgumentException("'" + key + "' is not an object");
    return (Map<String, Object>) v;
  }

  @SuppressWarnings("unchecked")
  public static List<Object> list(Map<String, Object> map, String key) {
    Object v = require(map, key);
    if (!(v instanceof List)) throw new IllegalArgumentException("'" + key + "' is not an array");
    return (List<Object>) v;
  }

  public static double num(Map<String, Object> map, String key) {
    Object v = require(map, key);
    if (!(v instanceof Number)) throw new IllegalArgumentException("'" + key + "' is not a number");
    return ((Number) v).doubleValue();
  }

  public static int integer(Map<String, Object> map, String key) {
    double d = num(map, key);
    if (d != Math.rint(d)) throw new IllegalArgumentException("'" + key + "' is not an integer");
    return (int) d;
  }

  public static String str(Map<String, Object> map, String key) {
    Object v = require(map, key);
    if (!(v instanceof String)) throw new IllegalArgumentException("'" + key + "' is not a string");
    return (String) v;
  }

  public static boolean bool(Map<String, Object> map, String key) {
    Object v = require(map, key);
    if (!(v instanceof Boolean)) throw new IllegalArgumentException("'" + key + "' is not a boolean");
    return (Boolean) v;
  }

  /** Numbers of a JSON array as doubles. */
  public static double[] doubles(Object array) {
    List<?> list = (List<?>) array;
    double[] out = new double[list.size()];
    for (int i = 0; i < out.length; ++i) out[i] = ((Number) list.get(i)).doubleValue();
    return out;
  }

  public static int[] ints(Object array) {
    List<?> list = (List<?>) array;
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; ++i) out[i] = ((Number) list.get(i)).intValue();
    return out;
  }

  private static Object require(Map<String, Object> map, String key) {
    if (!map.containsKey(key)) throw new IllegalArgumentException("missing key '" + key + "'");
    return map.get(key);
  }
}
