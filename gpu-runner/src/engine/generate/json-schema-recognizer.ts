// OpenAI's Structured Outputs, part 2: a byte-level recognizer of one JSON object that follows a compiled
// schema (json-schema-compile.ts), fed a token's bytes at a time like json-grammar.ts: its open containers
// in json-schema-frames.ts, the scalar value being read in json-schema-values.ts. Whitespace follows
// json-limits.ts's rules; accepts() tries bytes on a copy of the state.
import { isDigit, isSpace } from "./json-bytes.js";
import { MAX_INDENT, MAX_LEADING, MAX_NEWLINES } from "./json-limits.js";
import type { SchemaNode } from "./json-schema-compile.js";
import { forkFrame, keyByte, keyClosed, keyOpened, objectFrame, type Frame, type ObjectFrame } from "./json-schema-frames.js";
import { narrow } from "./json-schema-keys.js";
import { literalComplete, literalEnds, literalGoesOn, numberByte, numberComplete, stringByte, type LiteralLeaf, type NumberLeaf, type StringLeaf } from "./json-schema-values.js";

/** What is being read now, inside the innermost frame. */
type Leaf =
  | { kind: "value"; node: SchemaNode } // a value must start
  | { kind: "key" } // inside an object key (the frame narrows its names per byte)
  | StringLeaf
  | NumberLeaf
  | LiteralLeaf
  | { kind: "between" } // between JSON tokens (after a value, a key, a colon or a comma)
  | { kind: "done" };

export class JsonSchemaRecognizer {
  private frames: Frame[] = [];
  private leaf: Leaf;
  private newlines = 0;
  private indent = 0;
  private started = false;

  /** `compact`: between JSON tokens at most one space and nothing else (a tool call's spacing), instead of json-limits.ts's. */
  private compact: boolean;

  constructor(root: SchemaNode, compact = false) {
    if (root.kind !== "object") throw new Error("schema: the top level must be an object (type: object)");
    this.leaf = { kind: "value", node: root };
    this.compact = compact;
  }

  get done(): boolean {
    return this.leaf.kind === "done";
  }

  /** Inside a string value (of type string, not an enum's or a key), between characters: see JsonRecognizer. */
  get inPlainString(): boolean {
    const l = this.leaf;
    return l.kind === "string" && !l.escape && l.hex === 0 && l.utf8Left === 0;
  }

  push(bytes: Uint8Array): boolean {
    for (const b of bytes) if (!this.step(b)) return false;
    return true;
  }

  /**
   * A cheap test that accepts() would fail on a byte: false only inside an enum or const value that cannot go on
   * with it and is not complete (a union's branches are told apart by such values, a tool's name above all).
   */
  couldTake(b: number): boolean {
    const l = this.leaf;
    return l.kind !== "literal" || literalComplete(l) || literalGoesOn(l, b);
  }

  /** Whether `bytes` would continue the JSON; tried on a copy, the state is left as it was. */
  accepts(bytes: Uint8Array): boolean {
    return this.clone().push(bytes);
  }

  /** An independent copy of the state. */
  clone(): JsonSchemaRecognizer {
    const c = Object.create(JsonSchemaRecognizer.prototype) as JsonSchemaRecognizer;
    c.compact = this.compact;
    c.frames = this.frames.map(forkFrame);
    c.leaf = { ...this.leaf } as Leaf;
    c.newlines = this.newlines;
    c.indent = this.indent;
    c.started = this.started;
    return c;
  }

  private get top(): Frame | undefined {
    return this.frames[this.frames.length - 1];
  }

  private step(b: number): boolean {
    const l = this.leaf;
    // Bytes inside a string, a key, or an enum value that goes on with this byte (a space in "in progress").
    const inText = l.kind === "string" || l.kind === "key" || (l.kind === "literal" && literalGoesOn(l, b));
    if (!inText && isSpace(b)) return this.space(b);
    this.newlines = 0;
    this.indent = 0;
    switch (l.kind) {
      case "value":
        return this.startValue(l.node, b);
      case "key":
        return this.inKey(b);
      case "string":
        return this.inString(l, b);
      case "number":
        return this.inNumber(l, b);
      case "literal":
        return this.inLiteral(l, b);
      case "between":
        return this.between(b);
      case "done":
        return false;
    }
  }

  private space(b: number): boolean {
    const l = this.leaf;
    if (l.kind === "done") return false;
    if (l.kind === "literal" && !literalComplete(l)) return false;
    if (l.kind === "number" && !numberComplete(l)) return false;
    if (l.kind === "literal" || l.kind === "number") this.valueEnded();
    if (this.compact) return b === 0x20 && ++this.indent <= 1;
    if (!this.started) return ++this.indent <= MAX_LEADING;
    if (b === 0x0a) {
      this.indent = 0;
      return ++this.newlines <= MAX_NEWLINES;
    }
    return ++this.indent <= MAX_INDENT;
  }

  private startValue(node: SchemaNode, b: number): boolean {
    this.started = true;
    switch (node.kind) {
      case "anyOf": {
        const branch = node.byFirstByte.get(b);
        return branch !== undefined && this.startValue(branch, b);
      }
      case "object":
        if (b !== 0x7b) return false;
        this.frames.push(objectFrame(node));
        this.leaf = { kind: "between" };
        return true;
      case "array":
        if (b !== 0x5b) return false;
        this.frames.push({ kind: "array", node, count: 0, state: "open" });
        this.leaf = { kind: "between" };
        return true;
      case "string":
        if (b !== 0x22) return false;
        this.leaf = { kind: "string", escape: false, hex: 0, utf8Left: 0, lo: 0x80, hi: 0xbf };
        return true;
      case "number":
        if (b !== 0x2d && !isDigit(b)) return false;
        this.leaf = { kind: "number", integer: node.integer, part: b === 0x2d ? "minus" : b === 0x30 ? "zero" : "int", int: b === 0x2d ? 0 : 1, frac: 0, exp: 0 };
        return true;
      case "literals": {
        const [lo, hi] = narrow(node.texts, 0, node.texts.bytes.length, 0, b);
        if (lo === hi) return false;
        const l: LiteralLeaf = { kind: "literal", texts: node.texts, lo, hi, at: 1 };
        this.leaf = l;
        if (literalEnds(l)) this.valueEnded();
        return true;
      }
    }
  }

  /** Outside a value, inside the innermost container: keys, colons, commas and closing brackets. */
  private between(b: number): boolean {
    const f = this.top;
    if (!f) return false;
    if (f.kind === "array") {
      const canClose = f.count >= f.node.minItems;
      if (b === 0x5d) return canClose && this.close();
      if (f.state === "open") {
        if (f.node.maxItems === 0) return false;
        f.state = "after";
        return this.startValue(f.node.items, b);
      }
      if (b !== 0x2c || f.count >= f.node.maxItems) return false;
      this.leaf = { kind: "value", node: f.node.items };
      return true;
    }
    const left = f.node.props.size - f.used.size;
    switch (f.state) {
      case "open":
      case "key":
        if (b === 0x22 && left > 0) {
          keyOpened(f);
          this.leaf = { kind: "key" };
          return true;
        }
        return f.state === "open" && b === 0x7d && this.closeObject(f);
      case "colon":
        if (b !== 0x3a || !f.value) return false;
        this.leaf = { kind: "value", node: f.value };
        f.state = "after";
        return true;
      case "after":
        if (b === 0x2c) {
          if (left === 0) return false;
          f.state = "key";
          return true;
        }
        return b === 0x7d && this.closeObject(f);
    }
  }

  private closeObject(f: ObjectFrame): boolean {
    if (f.requiredUsed < f.node.required.size) return false;
    return this.close();
  }

  private close(): boolean {
    this.frames.pop();
    this.valueEnded();
    return true;
  }

  /** A value (or container) finished: back between tokens of its parent, or done at the top. */
  private valueEnded(): void {
    const f = this.top;
    if (!f) {
      this.leaf = { kind: "done" };
      return;
    }
    if (f.kind === "array") f.count++;
    this.leaf = { kind: "between" };
  }

  private inKey(b: number): boolean {
    const f = this.top as ObjectFrame;
    if (b !== 0x22) return keyByte(f, b);
    if (!keyClosed(f)) return false;
    this.leaf = { kind: "between" };
    return true;
  }

  private inString(l: StringLeaf, b: number): boolean {
    const took = stringByte(l, b);
    if (took !== "closed") return took;
    this.valueEnded();
    return true;
  }

  private inNumber(l: NumberLeaf, b: number): boolean {
    const took = numberByte(l, b);
    if (took !== "ended") return took;
    // The number ended; this byte comes after it.
    this.valueEnded();
    return this.between(b);
  }

  private inLiteral(l: LiteralLeaf, b: number): boolean {
    const [lo, hi] = narrow(l.texts, l.lo, l.hi, l.at, b);
    if (lo < hi) {
      [l.lo, l.hi] = [lo, hi];
      l.at++;
      // Nothing can extend it: the value is complete.
      if (literalEnds(l)) this.valueEnded();
      return true;
    }
    if (!literalComplete(l)) return false;
    // A shorter literal ended (1 among 1 and 12); this byte comes after it.
    this.valueEnded();
    return this.between(b);
  }
}
