// OpenAI's Structured Outputs, part 3: the recognizer of a whole answer, one object that follows a schema
// (json-schema-recognizer.ts) or, for a call among several tools, a union of such objects read side by side.
import { MAX_UNION_BRANCHES, checkSchemaSize, compileSchema, rootBranches } from "./json-schema-compile.js";
import { JsonSchemaRecognizer } from "./json-schema-recognizer.js";

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
