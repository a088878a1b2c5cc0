// Idempotency-Key on completions (the key itself: lib/idempotency-keys.ts). A retry of a finished completion
// is answered from its stored result; a retry after a failed or cut-short attempt runs again, and is billed
// only for tokens beyond what the key has paid, so a key costs at most its largest attempt.
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { idempotencyKeys } from "../db/schema.js";
import { requestHash, type KeyRef } from "../lib/idempotency-keys.js";
import { runBatch } from "../db/batch.js";
import type { Choice, Finish } from "./openai-response.js";
import type { GenerateUsage } from "./runner-protocol.js";
import { saidCallFormat, type SaidCallFormat } from "./tool-calls.js";
import { usageInsertFrom } from "../usage/record.js";

/**
 * The finished completion a retry is answered with; `tool_call_format` and `tool_call_ids`, the runner's, read its
 * tool calls again (a format the API does not know is kept too, so the retry is answered as text, as the first answer was).
 */
export type StoredCompletion = { id: string; created: number; usage: GenerateUsage; choices: Choice[] } & SaidCallFormat;

/** A result as stored: results stored before `n` hold their one choice's text and finish_reason instead. */
export type StoredRow = Omit<StoredCompletion, "choices"> & { choices?: Choice[]; text?: string; finish_reason?: Finish };

export const storedCompletion = (r: StoredRow): StoredCompletion => ({
  id: r.id,
  created: r.created,
  usage: r.usage,
  choices: r.choices ?? [{ text: r.text ?? "", finish_reason: r.finish_reason ?? "stop", logprobs: null }],
  ...saidCallFormat(r),
});

/**
 * The largest stored result, in UTF-8 bytes of its JSON: one D1 row holds at most 2 MB. A larger answer (long,
 * with many logprobs) is not kept: a retry runs again, billed only beyond what the key has paid.
 */
export const MAX_STORED_COMPLETION = 1_000_000;

const utf8 = new TextEncoder();

/** The result to store under the key, or null (settle as incomplete) when it is too large to keep. */
export const storable = (r: StoredCompletion | null): StoredCompletion | null => (r && utf8.encode(JSON.stringify(r)).length <= MAX_STORED_COMPLETION ? r : null);

/**
 * The completion's hash: include_usage shapes only a stream, so a JSON request differing in it alone is the
 * same request. Options at their default are left out, so that a key stored before an option existed still
 * matches the same request.
 */
export const completionHash = (call: { maxTokensDefault?: boolean; stream: boolean; includeUsage: boolean; frequency_penalty?: number; presence_penalty?: number; logit_bias?: Record<string, number>; logprobs?: number | null; n?: number; format?: string; jsonSchema?: Record<string, unknown> | null; echo?: string | null; bestOf?: number; toolCall?: unknown }): Promise<string> => {
  // maxTokensDefault is left out: it changes only what would otherwise be refused.
  const { frequency_penalty, presence_penalty, logit_bias, logprobs, n, format, jsonSchema, echo, bestOf, toolCall, maxTokensDefault: _default, ...rest } = call;
  return requestHash("completions", {
    ...rest,
    includeUsage: call.stream ? call.includeUsage : null,
    ...(frequency_penalty ? { frequency_penalty } : {}),
    ...(presence_penalty ? { presence_penalty } : {}),
    ...(logit_bias && Object.keys(logit_bias).length > 0 ? { logit_bias } : {}),
    ...(logprobs != null ? { logprobs } : {}),
    ...(n !== undefined && n !== 1 ? { n } : {}),
    ...(format && format !== "text" ? { format } : {}),
    ...(jsonSchema ? { jsonSchema } : {}),
    ...(toolCall ? { toolCall } : {}),
    ...(echo ? { echo: true } : {}),
    ...(bestOf !== undefined && bestOf !== (n ?? 1) ? { bestOf } : {}),
  });
};

/**
 * Bills an attempt under its key: only the tokens beyond what the key has paid (each kind at most its
 * largest attempt). The amounts are worked out inside one atomic batch from the key's current totals, and
 * only while this attempt still holds the key: an attempt that was taken over (stale) bills nothing more.
 */
export async function meterKeyed(db: Db, f: KeyRef & { model: string; usage: GenerateUsage; now: number }): Promise<void> {
  const mine = and(eq(idempotencyKeys.tenantId, f.tenantId), eq(idempotencyKeys.key, f.key), eq(idempotencyKeys.requestId, f.requestId));
  const paid = { prompt_tokens: idempotencyKeys.billedPromptTokens, completion_tokens: idempotencyKeys.billedCompletionTokens } as const;
  const inserts = (["prompt_tokens", "completion_tokens"] as const).map((kind) =>
    usageInsertFrom(
      db,
      { idempotencyKey: `req:${f.requestId}:${kind}`, tenantId: f.tenantId, kind, model: f.model, quantity: sql`${f.usage[kind]} - ${paid[kind]}`, ref: f.requestId, now: f.now },
      idempotencyKeys,
      and(mine, sql`${f.usage[kind]} > ${paid[kind]}`)!,
    ),
  );
  await runBatch(db, [
    ...inserts,
    db
      .update(idempotencyKeys)
      .set({ billedPromptTokens: sql`max(${idempotencyKeys.billedPromptTokens}, ${f.usage.prompt_tokens})`, billedCompletionTokens: sql`max(${idempotencyKeys.billedCompletionTokens}, ${f.usage.completion_tokens})`, updatedAt: f.now })
      .where(mine),
  ]);
}

