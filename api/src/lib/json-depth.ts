// How deeply JSON nests, measured without recursion. Schemas, tool parameters and call arguments nested deeper
// than MAX_JSON_DEPTH are refused up front: the readers after them (a schema compiler, a chat template's
// tojson) recurse, and would overflow their stack on them.

export const MAX_JSON_DEPTH = 64;
export const TOO_DEEP = `nested deeper than ${MAX_JSON_DEPTH} levels of objects and arrays; flatten it`;

/** Levels of objects and arrays in `value` (0 for a scalar); stops counting once past MAX_JSON_DEPTH. */
export function jsonDepth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_JSON_DEPTH) break;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** The same for JSON text, from its brackets outside strings (the text need not parse). */
export function jsonTextDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") deepest = Math.max(deepest, ++depth);
    else if (c === "}" || c === "]") depth--;
  }
  return deepest;
}
