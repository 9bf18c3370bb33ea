/**
 * HTML to plain text, small and dependency-free: drops scripts/styles/comments/head, turns block elements into line
 * breaks, removes the remaining tags, decodes entities and trims every line. Good enough for search-result pages that
 * are then summarized or cut into passages; not a layout engine.
 */

const DROP_ELEMENTS = ["script", "style", "noscript", "template", "svg", "head", "iframe", "object", "canvas"];
const BLOCK_TAGS = new Set([
  "address",
  "article",
  "aside",
  "blockquote",
  "br",
  "caption",
  "dd",
  "div",
  "dl",
  "dt",
  "fieldset",
  "figcaption",
  "figure",
  "footer",
  "form",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "header",
  "hr",
  "li",
  "main",
  "nav",
  "ol",
  "p",
  "pre",
  "section",
  "table",
  "tbody",
  "td",
  "tfoot",
  "th",
  "thead",
  "title",
  "tr",
  "ul",
  "body",
  "html",
  "option",
  "summary",
  "details",
]);

const NAMED: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: "\u00a0",
  ndash: "\u2013",
  mdash: "\u2014",
  hellip: "\u2026",
  lsquo: "\u2018",
  rsquo: "\u2019",
  ldquo: "\u201c",
  rdquo: "\u201d",
  copy: "\u00a9",
  reg: "\u00ae",
  trade: "\u2122",
  middot: "\u00b7",
  bull: "\u2022",
  deg: "\u00b0",
  times: "\u00d7",
  euro: "\u20ac",
  pound: "\u00a3",
  yen: "\u00a5",
  laquo: "\u00ab",
  raquo: "\u00bb",
  shy: "",
  zwj: "\u200d",
  zwnj: "\u200c",
  thinsp: "\u2009",
  ensp: "\u2002",
  emsp: "\u2003",
  eacute: "\u00e9",
  egrave: "\u00e8",
  aacute: "\u00e1",
  agrave: "\u00e0",
  oacute: "\u00f3",
  uuml: "\u00fc",
  ouml: "\u00f6",
  auml: "\u00e4",
  ccedil: "\u00e7",
  ntilde: "\u00f1",
  szlig: "\u00df",
  iacute: "\u00ed",
  uacute: "\u00fa",
};

/** Decode HTML character references (named ones from a common subset, all numeric ones). */
export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z][A-Za-z0-9]*);/g, (m, ref: string) => {
    if (ref[0] === "#") {
      const code = ref[1] === "x" || ref[1] === "X" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!Number.isFinite(code) || code <= 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return "\ufffd";
      return String.fromCodePoint(code);
    }
    const v = NAMED[ref] ?? NAMED[ref.toLowerCase()];
    return v === undefined ? m : v;
  });
}

/** Plain text of an HTML document: one line per block, lines trimmed, blank lines removed. */
export function htmlToText(html: string): string {
  let s = html.replace(/<!--[\s\S]*?-->/g, " ");
  for (const el of DROP_ELEMENTS) {
    s = s.replace(new RegExp(`<${el}\\b[^>]*>[\\s\\S]*?</${el}\\s*>`, "gi"), "\n");
    s = s.replace(new RegExp(`<${el}\\b[^>]*/>`, "gi"), "\n");
  }
  s = s.replace(/<!DOCTYPE[^>]*>/gi, "");
  s = s.replace(/<\/?([A-Za-z][A-Za-z0-9-]*)\b[^>]*>/g, (_m, tag: string) =>
    BLOCK_TAGS.has(tag.toLowerCase()) ? "\n" : " ",
  );
  s = decodeEntities(s);
  return s
    .split(/\r?\n/)
    .map((line) => line.replace(/[ \t\f\v\u00a0]+/g, " ").trim())
    .filter((line) => line.length > 0)
    .join("\n");
}

/** The `<title>` of an HTML document ("" when absent). */
export function htmlTitle(html: string): string {
  const m = /<title\b[^>]*>([\s\S]*?)<\/title\s*>/i.exec(html);
  return m ? decodeEntities(m[1]).replace(/\s+/g, " ").trim() : "";
}
