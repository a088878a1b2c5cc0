// The text of one member of a JSON object as written, spacing and all: a call's arguments are answered as the
// model wrote them rather than re-serialized, so that they read the same whether streamed or not, forced or not.

/** The raw text of the top-level member `key` (the last, as JSON.parse keeps) of `json`, which must parse as an object; null without it. */
export function rawMember(json: string, key: string): string | null {
  let i = skipSpace(json, 0);
  if (json[i] !== "{") return null;
  let found: string | null = null;
  i = skipSpace(json, i + 1);
  while (i < json.length && json[i] !== "}") {
    const keyEnd = stringEnd(json, i);
    const name = JSON.parse(json.slice(i, keyEnd)) as string;
    const start = skipSpace(json, skipSpace(json, keyEnd) + 1); // past the colon
    const end = valueEnd(json, start);
    if (name === key) found = json.slice(start, end);
    i = skipSpace(json, end);
    if (json[i] === ",") i = skipSpace(json, i + 1);
  }
  return found;
}

/**
 * The raw texts of the top-level items of the array that opens `json`, as far as it is written (the last may be
 * cut short), and what follows where reading stopped: "" when the text ends inside the array, else from its `]`
 * (or whatever stands where a `,` or `]` should).
 */
export function rawItems(json: string): { items: string[]; after: string } {
  let i = skipSpace(json, 0);
  if (json[i] !== "[") return { items: [], after: json.slice(i) };
  const items: string[] = [];
  i = skipSpace(json, i + 1);
  while (i < json.length && json[i] !== "]") {
    const end = valueEnd(json, i);
    items.push(json.slice(i, end));
    i = skipSpace(json, end);
    if (json[i] !== ",") break;
    i = skipSpace(json, i + 1);
  }
  return { items, after: json.slice(i) };
}

function skipSpace(s: string, i: number): number {
  while (i < s.length && (s[i] === " " || s[i] === "\n" || s[i] === "\r" || s[i] === "\t")) i++;
  return i;
}

/** Just past the string that opens at `i`. */
function stringEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === "\\") j++;
    else if (s[j] === '"') return j + 1;
  }
  return s.length;
}

/** Just past the value that starts at `i`: a string, an object or array (brackets counted outside strings), or a scalar. */
export function valueEnd(s: string, i: number): number {
  if (s[i] === '"') return stringEnd(s, i);
  if (s[i] === "{" || s[i] === "[") {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      const c = s[j];
      if (c === '"') j = stringEnd(s, j) - 1;
      else if (c === "{" || c === "[") depth++;
      else if ((c === "}" || c === "]") && --depth === 0) return j + 1;
    }
    return s.length;
  }
  let j = i;
  while (j < s.length && !",}] \n\r\t".includes(s[j])) j++;
  return j;
}
