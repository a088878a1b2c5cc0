// Drives Structured Outputs' recognizer the way masking does, one byte at a time (shared by its tests).
import { compileSchema } from "../../../../gpu-runner/src/engine/generate/json-schema-compile.js";
import { JsonSchemaRecognizer } from "../../../../gpu-runner/src/engine/generate/json-schema-recognizer.js";

export const utf8 = (s: string) => new TextEncoder().encode(s);

/** Feeds `text` byte by byte: the bytes taken before one was refused, and whether the object is complete. */
export function feed(schema: unknown, text: string): { taken: number; done: boolean } {
  const r = new JsonSchemaRecognizer(compileSchema(schema));
  const bytes = utf8(text);
  for (let i = 0; i < bytes.length; i++) if (!r.push(bytes.subarray(i, i + 1))) return { taken: i, done: false };
  return { taken: bytes.length, done: r.done };
}
