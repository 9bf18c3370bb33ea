/**
 * Python string semantics that the upstream (Python) code relies on, implemented exactly.
 *
 * JavaScript's `\s`, `trim()` and `split(/\s+/)` use a different whitespace set than Python's
 * `str.isspace()` (JS includes U+FEFF; Python includes \x1c-\x1f and \x85), so every place that ports
 * `str.strip()` / `str.split()` must use these helpers.
 */

/** Code points for which Python's `str.isspace()` is true (CPython 3.11, Unicode 14). */
const PY_WHITESPACE = new Set<number>([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003,
  0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** Python `ch.isspace()` for a single UTF-16 code unit (all Python whitespace is in the BMP). */
export function isPyWhitespace(codeUnit: number): boolean {
  return PY_WHITESPACE.has(codeUnit);
}

/** Python `s.strip()` (no argument). */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && PY_WHITESPACE.has(s.charCodeAt(start))) start++;
  while (end > start && PY_WHITESPACE.has(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** Python `s.lstrip()` (no argument). */
export function pyLstrip(s: string): string {
  let start = 0;
  while (start < s.length && PY_WHITESPACE.has(s.charCodeAt(start))) start++;
  return s.slice(start);
}

/** Python `s.rstrip()` (no argument). */
export function pyRstrip(s: string): string {
  let end = s.length;
  while (end > 0 && PY_WHITESPACE.has(s.charCodeAt(end - 1))) end--;
  return s.slice(0, end);
}

/** Python `s.split()` (no argument): split on runs of Python whitespace, empty pieces dropped. */
export function pyWords(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && PY_WHITESPACE.has(s.charCodeAt(i))) i++;
    if (i >= n) break;
    const start = i;
    while (i < n && !PY_WHITESPACE.has(s.charCodeAt(i))) i++;
    out.push(s.slice(start, i));
  }
  return out;
}

/** Python `s.split(" ")`: split on every single U+0020; `""` gives `[""]`. */
export function spaceSplit(s: string): string[] {
  return s.split(" ");
}

/** Text after the last occurrence of `t` in `s`; all of `s` if `t` does not occur (Python `s.split(t)[-1]`). */
export function afterLast(s: string, t: string): string {
  const i = s.lastIndexOf(t);
  return i < 0 ? s : s.slice(i + t.length);
}

/** Text before the first occurrence of `t` in `s`; all of `s` if `t` does not occur (Python `s.split(t)[0]`). */
export function beforeFirst(s: string, t: string): string {
  const i = s.indexOf(t);
  return i < 0 ? s : s.slice(0, i);
}

/** Python `s.count(t)`: non-overlapping occurrences, left to right. `count(s, "")` is `len(s) + 1` as in Python. */
export function countOccurrences(s: string, t: string): number {
  if (t.length === 0) return s.length + 1;
  let n = 0;
  let i = s.indexOf(t);
  while (i >= 0) {
    n++;
    i = s.indexOf(t, i + t.length);
  }
  return n;
}

/** Regex source matching one Python whitespace character (for building regexes with Python `\s` semantics). */
export const PY_WS_CLASS =
  "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/** Escape a literal for use inside a RegExp. */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
