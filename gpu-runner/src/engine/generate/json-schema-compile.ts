// OpenAI's Structured Outputs, part 1: a JSON Schema (the subset below) compiled into the nodes that
// json-schema.ts's recognizer follows byte by byte.
// Supported: type (one or a list), properties + required (objects never get keys the schema does not
// list), items + minItems/maxItems, enum, const, anyOf whose branches start differently (a string, a
// number, an object, …); title, description, $schema, default and examples are ignored. Anything else
// (pattern, format, minimum, $ref, …) is refused by name rather than silently not enforced.
import { MAX_INT_DIGITS } from "./json-limits.js";
import { sortedNames, type SortedNames } from "./json-schema-keys.js";

export type SchemaNode =
  | { kind: "object"; props: Map<string, SchemaNode>; required: ReadonlySet<string>; names: SortedNames }
  | { kind: "array"; items: SchemaNode; minItems: number; maxItems: number }
  | { kind: "string" }
  | { kind: "number"; integer: boolean }
  /** enum, const, boolean and null: one of these JSON texts, byte for byte (sorted, read like an object's keys). */
  | { kind: "literals"; texts: SortedNames }
  /** Branches told apart by their first byte. */
  | { kind: "anyOf"; byFirstByte: Map<number, SchemaNode> };

const IGNORED = new Set(["title", "description", "$schema", "default", "examples"]);

/** The most schemas nested in one another (compiling recurses, and so does reading what it compiled). */
export const MAX_SCHEMA_DEPTH = 32;

/**
 * Size limits of a schema (OpenAI's Structured Outputs has the same kind): masking a step tries the vocabulary
 * against the grammar, so its cost grows with the branches of a top-level union and with the names and
 * values it must compare; without a bound, one request could hold the serving thread for minutes.
 */
export const MAX_UNION_BRANCHES = 128;
export const MAX_SCHEMA_PROPERTIES = 5000;
export const MAX_ENUM_VALUES = 1000;

/** Throws naming the limit when the schema (walked where schemas sit, not inside ignored keywords) is too large. */
export function checkSchemaSize(schema: unknown, path: string): void {
  let properties = 0;
  let values = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v === null || typeof v !== "object") return;
    const s = v as Record<string, unknown>;
    if (s.properties && typeof s.properties === "object") properties += Object.keys(s.properties).length;
    if (Array.isArray(s.enum)) values += s.enum.length;
    for (const [k, child] of Object.entries(s)) if (!IGNORED.has(k) && k !== "enum" && k !== "const") walk(child);
  };
  walk(schema);
  if (properties > MAX_SCHEMA_PROPERTIES) throw new Error(`${path}: ${properties} object properties in all, over the ${MAX_SCHEMA_PROPERTIES} a schema may have`);
  if (values > MAX_ENUM_VALUES) throw new Error(`${path}: ${values} enum values in all, over the ${MAX_ENUM_VALUES} a schema may have`);
}

/** Compiles a schema; throws naming the path of what it cannot enforce. */
export function compileSchema(schema: unknown, path = "schema", depth = 1): SchemaNode {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw new Error(`${path}: a schema is an object`);
  if (depth > MAX_SCHEMA_DEPTH) throw new Error(`${path}: schemas nested deeper than ${MAX_SCHEMA_DEPTH} levels are not supported; flatten it`);
  const s = schema as Record<string, unknown>;
  const known = new Set(["type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "enum", "const", "anyOf", "minimum", "maximum"]);
  for (const k of Object.keys(s)) if (!known.has(k) && !IGNORED.has(k)) throw new Error(`${path}.${k}: this keyword is not supported`);
  if (s.enum !== undefined || s.const !== undefined) {
    const given = s.const !== undefined ? [s.const] : s.enum;
    if (!Array.isArray(given) || given.length === 0) throw new Error(`${path}.enum: a non-empty list`);
    for (const v of given) if (v !== null && typeof v === "object") throw new Error(`${path}.enum: only strings, numbers, booleans and null`);
    // With a type beside it, only the values of that type can be written.
    const types = s.type === undefined ? null : new Set(Array.isArray(s.type) ? s.type : [s.type]);
    const values = types ? given.filter((v) => types.has(jsonType(v)) || (types.has("number") && jsonType(v) === "integer")) : given;
    if (values.length === 0) throw new Error(`${path}.enum: none of its values is of type ${JSON.stringify(s.type)}`);
    return { kind: "literals", texts: sortedNames(values.map((v) => JSON.stringify(v))) };
  }
  if (s.anyOf !== undefined) {
    if (!Array.isArray(s.anyOf) || s.anyOf.length === 0) throw new Error(`${path}.anyOf: a non-empty list of schemas`);
    const beside = Object.keys(s).find((k) => k !== "anyOf" && !IGNORED.has(k));
    if (beside) throw new Error(`${path}.${beside}: keywords beside anyOf are not supported; put them in its branches`);
    return anyOf(s.anyOf.map((b, i) => compileSchema(b, `${path}.anyOf.${i}`, depth + 1)), `${path}.anyOf`);
  }
  if (Array.isArray(s.type)) return anyOf(s.type.map((t) => compileSchema({ ...s, type: t }, path, depth)), `${path}.type`);
  switch (s.type) {
    case "object":
      return objectNode(s, path, depth);
    case "array": {
      if (s.items === undefined) throw new Error(`${path}.items: an array needs a schema for its items`);
      const minItems = count(s.minItems, 0, `${path}.minItems`);
      const maxItems = count(s.maxItems, Infinity, `${path}.maxItems`);
      if (minItems > maxItems) throw new Error(`${path}: minItems is above maxItems`);
      return { kind: "array", items: compileSchema(s.items, `${path}.items`, depth + 1), minItems, maxItems };
    }
    case "string":
      return { kind: "string" };
    case "number":
    case "integer":
      noBounds(s, path);
      return { kind: "number", integer: s.type === "integer" };
    case "boolean":
      return { kind: "literals", texts: sortedNames(["true", "false"]) };
    case "null":
      return { kind: "literals", texts: sortedNames(["null"]) };
    default:
      throw new Error(`${path}.type: one of object, array, string, number, integer, boolean, null`);
  }
}

/** The JSON Schema type of a JSON value (integers apart from other numbers). */
function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/**
 * minimum/maximum are taken only where they bound nothing the grammar writes: integers have at most 15 digits
 * (json-limits.ts), so bounds at ±(2^53 − 1), as zod and the openai client send for every integer, hold.
 */
function noBounds(s: Record<string, unknown>, path: string): void {
  const widest = 10 ** MAX_INT_DIGITS - 1;
  const ok = (k: "minimum" | "maximum", sign: -1 | 1) => s[k] === undefined || (s.type === "integer" && typeof s[k] === "number" && sign * (s[k] as number) >= widest);
  if (!ok("minimum", -1)) throw new Error(`${path}.minimum: bounds are not supported (an integer's ±${widest} or wider are, as they bound nothing)`);
  if (!ok("maximum", 1)) throw new Error(`${path}.maximum: bounds are not supported (an integer's ±${widest} or wider are, as they bound nothing)`);
}

function count(v: unknown, fallback: number, path: string): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || (v as number) < 0) throw new Error(`${path}: an integer ≥ 0`);
  return v as number;
}

function objectNode(s: Record<string, unknown>, path: string, depth: number): SchemaNode {
  if (s.additionalProperties !== undefined && s.additionalProperties !== false) throw new Error(`${path}.additionalProperties: only false (keys the schema does not list are never written)`);
  const props = new Map<string, SchemaNode>();
  const given = (s.properties ?? {}) as Record<string, unknown>;
  if (typeof given !== "object" || given === null || Array.isArray(given)) throw new Error(`${path}.properties: an object of schemas`);
  for (const [name, sub] of Object.entries(given)) {
    if (/["\\\u0000-\u001f]/.test(name)) throw new Error(`${path}.properties: the key ${JSON.stringify(name)} needs escaping, which is not supported`);
    props.set(name, compileSchema(sub, `${path}.properties.${name}`, depth + 1));
  }
  const required = s.required ?? [];
  if (!Array.isArray(required) || required.some((r) => typeof r !== "string" || !props.has(r))) throw new Error(`${path}.required: names of its properties`);
  return { kind: "object", props, required: new Set(required as string[]), names: sortedNames(props.keys()) };
}

/** The bytes a value of this node can start with. */
function firstBytes(n: SchemaNode): number[] {
  switch (n.kind) {
    case "object":
      return [0x7b];
    case "array":
      return [0x5b];
    case "string":
      return [0x22];
    case "number":
      return [0x2d, ...Array.from({ length: 10 }, (_, i) => 0x30 + i)];
    case "literals":
      return [...new Set(n.texts.bytes.map((t) => t[0]))];
    case "anyOf":
      return [...n.byFirstByte.keys()];
  }
}

function anyOf(branches: SchemaNode[], path: string): SchemaNode {
  if (branches.length === 0) throw new Error(`${path}: an empty list allows no value`);
  const byFirstByte = new Map<number, SchemaNode>();
  for (const b of branches) {
    for (const first of firstBytes(b)) {
      const had = byFirstByte.get(first);
      // A number and an integer (Union[int, float]): any number will do.
      if (had?.kind === "number" && b.kind === "number") {
        byFirstByte.set(first, had.integer ? b : had);
        continue;
      }
      if (had) throw new Error(`${path}: two branches can start with ${JSON.stringify(String.fromCharCode(first))}; only branches of different kinds are supported`);
      byFirstByte.set(first, b);
    }
  }
  return { kind: "anyOf", byFirstByte };
}

/** The branches of a top-level anyOf (with nothing but ignored keywords beside it) that is read as a union, or null. */
export function rootBranches(schema: unknown): unknown[] | null {
  const branches = (schema as { anyOf?: unknown } | null)?.anyOf;
  const alone = Array.isArray(branches) && Object.keys(schema as object).every((k) => k === "anyOf" || IGNORED.has(k));
  return alone && branches.length >= 2 ? branches : null;
}
