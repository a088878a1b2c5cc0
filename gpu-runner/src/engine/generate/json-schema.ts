// OpenAI's Structured Outputs, part 2: a byte-level recognizer of one JSON object that follows a compiled
// schema (json-schema-compile.ts), fed a token's bytes at a time like json-grammar.ts. Whitespace follows
// json-limits.ts's rules; accepts() tries bytes on a copy of the state.
import { isDigit, isHex, isShortEscape, isSpace, utf8Lead } from "./json-bytes.js";
import { MAX_INDENT, MAX_LEADING, MAX_NEWLINES, numberFits } from "./json-limits.js";
import { MAX_UNION_BRANCHES, checkSchemaSize, compileSchema, rootBranches, type SchemaNode } from "./json-schema-compile.js";
import { narrow, UsedNames, type SortedNames } from "./json-schema-keys.js";

/**
 * The recognizer of a whole answer: one object schema, or a top-level anyOf of object schemas (a call among
 * several tools) read as a union; `compact` for a tool call's spacing; `depth`, the level the schema will sit at
 * (2 for a tool's parameters inside its call's object). Throws naming the path of what it cannot enforce.
 */
export function schemaRecognizer(schema: unknown, path: string, o: { compact?: boolean; depth?: number } = {}): JsonSchemaRecognizer | JsonSchemaUnion {
  const root = (s: unknown, at: string) => {
    const node = compileSchema(s, at, o.depth ?? 1);
    if (node.kind !== "object") throw new Error(`${at}: the top level must be an object (type: object)`);
    return new JsonSchemaRecognizer(node, o.compact);
  };
  checkSchemaSize(schema, path);
  const branches = rootBranches(schema);
  if (!branches) return root(schema, path);
  if (branches.length > MAX_UNION_BRANCHES) {
    throw new Error(`${path}: ${branches.length} alternatives at the top level (tools' calls, or anyOf branches), over the ${MAX_UNION_BRANCHES} an answer may choose among`);
  }
  return new JsonSchemaUnion(branches.map((b, i) => root(b, `${path}.anyOf.${i}`)));
}


/**
 * Objects that all start with `{` (which anyOf inside a schema cannot tell apart by their first byte): every
 * branch reads the bytes, and those that refuse one drop out; the answer is what the branches left accept.
 */
export class JsonSchemaUnion {
  constructor(private branches: JsonSchemaRecognizer[]) {}

  get done(): boolean {
    return this.branches.some((b) => b.done);
  }

  /** One branch inside a plain string is enough: the union takes what any branch takes. */
  get inPlainString(): boolean {
    return this.branches.some((b) => b.inPlainString);
  }

  push(bytes: Uint8Array): boolean {
    const left = this.branches.filter((b) => b.couldTake(bytes[0]) && b.accepts(bytes));
    if (left.length === 0) return false;
    for (const b of left) b.push(bytes);
    this.branches = left;
    return true;
  }

  accepts(bytes: Uint8Array): boolean {
    return this.branches.some((b) => b.couldTake(bytes[0]) && b.accepts(bytes));
  }

  /** An independent copy of the state. */
  clone(): JsonSchemaUnion {
    return new JsonSchemaUnion(this.branches.map((b) => b.clone()));
  }
}

type Frame =
  | {
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
    }
  | { kind: "array"; node: Extract<SchemaNode, { kind: "array" }>; count: number; state: "open" | "after" };

/** What is being read now, inside the innermost frame. */
type Leaf =
  | { kind: "value"; node: SchemaNode } // a value must start
  | { kind: "key" } // inside an object key (bytes in the frame's `key`)
  | { kind: "string"; escape: boolean; hex: number; utf8Left: number; lo: number; hi: number }
  | { kind: "number"; integer: boolean; part: "minus" | "zero" | "int" | "dot" | "frac" | "e" | "esign" | "exp"; int: number; frac: number; exp: number }
  /** Inside an enum or const value: `at` bytes matched by the texts [lo, hi) of `texts` (the complete one sorts first). */
  | { kind: "literal"; texts: SortedNames; lo: number; hi: number; at: number }
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
    return l.kind !== "literal" || this.literalComplete(l) || literalGoesOn(l, b);
  }

  /** Whether `bytes` would continue the JSON; tried on a copy, the state is left as it was. */
  accepts(bytes: Uint8Array): boolean {
    return this.clone().push(bytes);
  }

  /** An independent copy of the state. */
  clone(): JsonSchemaRecognizer {
    const c = Object.create(JsonSchemaRecognizer.prototype) as JsonSchemaRecognizer;
    c.compact = this.compact;
    c.frames = this.frames.map((f) => (f.kind === "object" ? { ...f, used: f.used.fork() } : { ...f }));
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
    if (l.kind === "literal" && !this.literalComplete(l)) return false;
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
        this.frames.push({ kind: "object", node, used: UsedNames.none(), requiredUsed: 0, state: "open", keyLength: 0, lo: 0, hi: 0, value: null });
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
        const l: Literal = { kind: "literal", texts: node.texts, lo, hi, at: 1 };
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
          f.keyLength = 0;
          f.lo = 0;
          f.hi = f.node.names.names.length;
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

  private closeObject(f: Extract<Frame, { kind: "object" }>): boolean {
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
    const f = this.top as Extract<Frame, { kind: "object" }>;
    const names = f.node.names;
    if (b === 0x22) {
      // The name equal to the key, if any, sorts first in the range.
      if (f.lo >= f.hi || names.bytes[f.lo].length !== f.keyLength || f.used.has(f.lo)) return false;
      const name = names.names[f.lo];
      f.used.add(f.lo);
      if (f.node.required.has(name)) f.requiredUsed++;
      f.value = f.node.props.get(name)!;
      f.state = "colon";
      this.leaf = { kind: "between" };
      return true;
    }
    [f.lo, f.hi] = narrow(names, f.lo, f.hi, f.keyLength, b);
    f.keyLength++;
    return f.hi - f.lo > f.used.countIn(f.lo, f.hi);
  }

  private inString(l: Extract<Leaf, { kind: "string" }>, b: number): boolean {
    if (l.hex > 0) {
      if (!isHex(b)) return false;
      l.hex--;
      return true;
    }
    if (l.escape) {
      l.escape = false;
      if (b === 0x75) {
        l.hex = 4;
        return true;
      }
      return isShortEscape(b);
    }
    if (l.utf8Left > 0) {
      if (b < l.lo || b > l.hi) return false;
      l.utf8Left--;
      l.lo = 0x80;
      l.hi = 0xbf;
      return true;
    }
    if (b === 0x22) {
      this.valueEnded();
      return true;
    }
    if (b === 0x5c) {
      l.escape = true;
      return true;
    }
    if (b < 0x20) return false;
    if (b < 0x80) return true;
    const lead = utf8Lead(b);
    if (!lead) return false;
    [l.utf8Left, l.lo, l.hi] = [lead.left, lead.lo, lead.hi];
    return true;
  }

  private inNumber(l: Extract<Leaf, { kind: "number" }>, b: number): boolean {
    const digit = isDigit(b);
    const next = numberStep(l, b, digit) ?? (digit && (l.part === "int" || l.part === "frac" || l.part === "exp") ? l.part : null);
    if (next !== null) {
      l.part = next;
      if (!digit) return true;
      // Digits within json-limits.ts's limits, so that the number parses to what it says.
      if (next === "zero" || next === "int") l.int++;
      else if (next === "frac") l.frac++;
      else l.exp++;
      return numberFits(l.int, l.frac, l.exp);
    }
    if (!numberComplete(l)) return false;
    // The number ended; this byte comes after it.
    this.valueEnded();
    return this.between(b);
  }

  private inLiteral(l: Literal, b: number): boolean {
    const [lo, hi] = narrow(l.texts, l.lo, l.hi, l.at, b);
    if (lo < hi) {
      [l.lo, l.hi] = [lo, hi];
      l.at++;
      // Nothing can extend it: the value is complete.
      if (literalEnds(l)) this.valueEnded();
      return true;
    }
    if (!this.literalComplete(l)) return false;
    // A shorter literal ended (1 among 1 and 12); this byte comes after it.
    this.valueEnded();
    return this.between(b);
  }

  /** A text of the range is all of the bytes read (it sorts first: every text in the range starts with them). */
  private literalComplete(l: Literal): boolean {
    return l.texts.bytes[l.lo].length === l.at;
  }
}

/** The number's next part after byte b, or null when b does not move it on. */
function numberStep(l: Extract<Leaf, { kind: "number" }>, b: number, digit: boolean): Extract<Leaf, { kind: "number" }>["part"] | null {
  const exponent = b === 0x65 || b === 0x45;
  switch (l.part) {
    case "minus":
      return digit ? (b === 0x30 ? "zero" : "int") : null;
    case "zero":
    case "int":
      if (l.integer) return null;
      return b === 0x2e ? "dot" : exponent ? "e" : null;
    case "dot":
      return digit ? "frac" : null;
    case "frac":
      return exponent ? "e" : null;
    case "e":
      return b === 0x2b || b === 0x2d ? "esign" : digit ? "exp" : null;
    case "esign":
      return digit ? "exp" : null;
    case "exp":
      return null;
  }
}

function numberComplete(l: Extract<Leaf, { kind: "number" }>): boolean {
  return l.part === "zero" || l.part === "int" || l.part === "frac" || l.part === "exp";
}

type Literal = Extract<Leaf, { kind: "literal" }>;

/** Whether some text of the literal's range goes on with byte `b` (two binary searches, not a scan of the enum). */
function literalGoesOn(l: Literal, b: number): boolean {
  const [lo, hi] = narrow(l.texts, l.lo, l.hi, l.at, b);
  return lo < hi;
}

/** Every text of the range is complete, so nothing can extend the value (a longer one would sort last). */
function literalEnds(l: Literal): boolean {
  return l.texts.bytes[l.hi - 1].length === l.at;
}
