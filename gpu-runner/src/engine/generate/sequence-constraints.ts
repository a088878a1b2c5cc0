// What a sequence's tokens are checked against, built from its request: JSON mode's grammar (any object or a
// schema's), banned text, or tool calls in a template's format. Each checks the model's pick first and masks the
// vocabulary only on a refusal (sequence.ts).
import { JsonMode, type JsonRecognizer, type JsonVocabulary } from "./json-mode.js";
import { JsonObjectRecognizer } from "./json-grammar.js";
import { schemaRecognizer } from "./json-schema.js";
import { BannedText } from "./banned-text.js";
import { AutoToolCalls } from "./auto-tool-calls.js";
import { CallList } from "./call-list.js";
import { CallIdCheck } from "./call-id.js";
import { NamedCall } from "./named-call.js";
import type { AutoCallsRequest, SequenceRequest, SequenceTokenizer } from "./sequence.js";

/** Checks the tokens a sequence writes: the model's pick first, the vocabulary masked only on a refusal. */
export type Constraint = JsonMode | BannedText | AutoToolCalls;

/** What the sequence's tokens are checked against: JSON mode's grammar, banned text, tool calls, or nothing. */
export function constraintOf(req: SequenceRequest, tok: SequenceTokenizer | null, stops: ReadonlySet<number>): Constraint | null {
  if (req.json || req.jsonSchema) return new JsonMode(jsonVocabulary(tok, stops), jsonRecognizer(req));
  if (req.bannedText) return bannedText(tok, req.bannedText, req.hiddenTokens);
  if (req.toolCalls) return autoToolCalls(tok, stops, req.toolCalls, req.hiddenTokens);
  return null;
}

/**
 * The tool-call constraint of a request (`hidden`: its hiddenTokens); throws without a tokenizer that spells
 * tokens, or for a schema the grammar cannot enforce.
 */
export function autoToolCalls(tok: SequenceTokenizer | null, stops: ReadonlySet<number>, calls: AutoCallsRequest, hidden?: ReadonlySet<number>): AutoToolCalls {
  const grammar = schemaRecognizer(calls.jsonSchema, calls.jsonSchemaPath, { compact: true });
  const bytes = (s: string) => new TextEncoder().encode(s);
  const call = () => grammar.clone();
  const callOf = calls.named ? () => NamedCall.open(call, calls.callIds === true) : calls.list ? () => new CallList(() => new CallIdCheck(call()), calls.parallel ? Infinity : 1) : call;
  return new AutoToolCalls(jsonVocabulary(tok, stops), stops, {
    opening: bytes(calls.opening),
    closing: bytes(calls.closing),
    leading: calls.leading,
    leadingTag: bytes(calls.leadingTag ?? ""),
    grammar: callOf,
    parallel: calls.parallel,
    reopens: calls.named,
    callTags: (calls.callTags ?? []).map(bytes),
    opened: calls.opened,
    hidden,
  });
}

/** Banned text as bytes, checked against the tokenizer's spelling of each token (`hidden` write none); throws without one. */
function bannedText(tok: SequenceTokenizer | null, text: string, hidden?: ReadonlySet<number>): BannedText {
  if (!tok?.tokenBytes || tok.vocabSize === undefined) throw new Error("banned text needs a tokenizer (tokenizer.json in the model folder)");
  return new BannedText({ tokenBytes: tok.tokenBytes, vocabSize: tok.vocabSize }, new TextEncoder().encode(text), hidden);
}

/** The vocabulary JSON mode checks tokens against; throws without a tokenizer that spells tokens. */
export function jsonVocabulary(tok: SequenceTokenizer | null, stops: ReadonlySet<number>): JsonVocabulary {
  if (!tok?.tokenBytes || tok.vocabSize === undefined) throw new Error("response_format: JSON mode needs a tokenizer (tokenizer.json in the model folder)");
  return { tokenBytes: tok.tokenBytes, vocabSize: tok.vocabSize, blocked: new Set([...stops, ...(tok.specialTokenIds ?? [])]) };
}

/**
 * The grammar of a JSON-mode request: its schema's (compiled; throws naming what it cannot enforce; a call's id held
 * to Mistral's 9 letters or digits with `jsonCallId`), or any object.
 */
export function jsonRecognizer(req: Pick<SequenceRequest, "jsonSchema" | "jsonSchemaPath" | "jsonCompact" | "jsonCallId">): JsonRecognizer {
  if (!req.jsonSchema) return new JsonObjectRecognizer();
  const schema = schemaRecognizer(req.jsonSchema, req.jsonSchemaPath ?? "response_format.json_schema.schema", { compact: req.jsonCompact });
  return req.jsonCallId ? new CallIdCheck(schema) : schema;
}
