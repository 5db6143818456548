/**
 * A small XML element-tree reader, enough for `nvidia-smi -q -x` (elements, attributes, text, entities; no
 * namespaces, CDATA or mixed content). Kept here instead of a dependency because that output is all we parse.
 */

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

export class XmlParseError extends Error {
  override name = "XmlParseError";
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
  }
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, entity: string) => {
    if (entity.startsWith("#x")) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith("#")) return String.fromCodePoint(parseInt(entity.slice(1), 10));
    return ENTITIES[entity] ?? whole;
  });
}

const TOKEN =
  /<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<!DOCTYPE[^>]*>|<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
const ATTRIBUTE = /([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

export function parseXml(source: string): XmlElement {
  const root: XmlElement = { name: "#document", attributes: {}, children: [], text: "" };
  const stack: XmlElement[] = [root];
  let last = 0;
  for (const match of source.matchAll(TOKEN)) {
    const top = stack[stack.length - 1]!;
    const between = source.slice(last, match.index);
    if (between.includes("<")) throw new XmlParseError("malformed markup", last + between.indexOf("<"));
    top.text += between;
    last = match.index + match[0].length;
    const [, closing, name, attributeText, selfClosing] = match;
    if (name === undefined) continue; // declaration, comment, doctype
    if (closing) {
      if (top.name !== name) throw new XmlParseError(`closing </${name}> does not match <${top.name}>`, match.index);
      top.text = decode(top.text.trim());
      stack.pop();
      continue;
    }
    const attributes: Record<string, string> = {};
    for (const a of (attributeText ?? "").matchAll(ATTRIBUTE)) attributes[a[1]!] = decode(a[2] ?? a[3] ?? "");
    const element: XmlElement = { name, attributes, children: [], text: "" };
    top.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (source.slice(last).includes("<")) throw new XmlParseError("malformed markup", last);
  if (stack.length !== 1) throw new XmlParseError(`unclosed <${stack[stack.length - 1]!.name}>`, source.length);
  return root;
}

/** First child with this name, following a path of names ("fb_memory_usage/total"). */
export function child(element: XmlElement, path: string): XmlElement | undefined {
  let current: XmlElement | undefined = element;
  for (const name of path.split("/")) {
    current = current?.children.find((c) => c.name === name);
  }
  return current;
}

export function childText(element: XmlElement, path: string): string | undefined {
  return child(element, path)?.text;
}
