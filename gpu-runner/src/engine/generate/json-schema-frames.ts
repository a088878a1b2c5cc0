// The containers json-schema-recognizer.ts has open: an object whose keys are only the schema's names, each
// at most once and the required ones before it closes, read as a range of sorted names narrowed per byte;
// and an array with its item count, within minItems and maxItems.
import type { SchemaNode } from "./json-schema-compile.js";
import { narrow, UsedNames } from "./json-schema-keys.js";

export type ObjectFrame = {
  kind: "object";
  node: Extract<SchemaNode, { kind: "object" }>;
  /** The names written so far, and how many of them are required. */
  used: UsedNames;
  requiredUsed: number;
  state: "open" | "key" | "colon" | "after";
  /** Bytes of the key in progress, and the range of names (node.names) that start with them. */
  keyLength: number;
  lo: number;
  hi: number;
  value: SchemaNode | null;
};
export type ArrayFrame = { kind: "array"; node: Extract<SchemaNode, { kind: "array" }>; count: number; state: "open" | "after" };
export type Frame = ObjectFrame | ArrayFrame;

export function objectFrame(node: ObjectFrame["node"]): ObjectFrame {
  return { kind: "object", node, used: UsedNames.none(), requiredUsed: 0, state: "open", keyLength: 0, lo: 0, hi: 0, value: null };
}

/** An independent copy (the names used are forked, not shared). */
export function forkFrame(f: Frame): Frame {
  return f.kind === "object" ? { ...f, used: f.used.fork() } : { ...f };
}

/** A key's opening quote: every name is still possible. */
export function keyOpened(f: ObjectFrame): void {
  f.keyLength = 0;
  f.lo = 0;
  f.hi = f.node.names.names.length;
}

/** A byte of the key: whether some name not yet used still starts with the key so far. */
export function keyByte(f: ObjectFrame, b: number): boolean {
  [f.lo, f.hi] = narrow(f.node.names, f.lo, f.hi, f.keyLength, b);
  f.keyLength++;
  return f.hi - f.lo > f.used.countIn(f.lo, f.hi);
}

/** The key's closing quote: whether the key is a whole name not yet used; if so, its value is next after the colon. */
export function keyClosed(f: ObjectFrame): boolean {
  const names = f.node.names;
  // The name equal to the key, if any, sorts first in the range.
  if (f.lo >= f.hi || names.bytes[f.lo].length !== f.keyLength || f.used.has(f.lo)) return false;
  const name = names.names[f.lo];
  f.used.add(f.lo);
  if (f.node.required.has(name)) f.requiredUsed++;
  f.value = f.node.props.get(name)!;
  f.state = "colon";
  return true;
}
