// Cursor pagination the OpenAI way: ?after=<id>&limit=N over time-ordered ids, newest first.
import { z } from "@hono/zod-openapi";

/**
 * The list query of a list of objects whose ids start with `prefix`. Any of its ids works as a cursor (ids
 * sort by creation), even one deleted since; another kind's id would page by the wrong order, so it is refused.
 */
export const listQueryOf = (prefix: string) =>
  z.object({
    after: z
      .string()
      .regex(new RegExp(`^${prefix}[0-9a-z]{24}$`), `after must be the id of one of this list's objects (${prefix}…), such as the last_id of the previous page`)
      .optional()
      .openapi({ description: `id (${prefix}…) of the last object of the previous page` }),
    limit: limitQuery(100, 20),
  });

/**
 * A page size from the query string, 1 to `max`: one message for every way it can be wrong (zod's own would
 * say "received NaN" of limit=abc, or of limit sent twice).
 */
export function limitQuery(max: number, fallback: number) {
  const error = `limit must be a whole number from 1 to ${max}, sent once`;
  return z.coerce.number({ error }).int({ error }).min(1, { error }).max(max, { error }).default(fallback);
}


/** Wraps one page (fetched with limit + 1 rows) into the list envelope. */
export function page<T extends { id: string }>(rows: T[], limit: number) {
  const data = rows.slice(0, limit);
  return {
    object: "list" as const,
    data,
    has_more: rows.length > limit,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
  };
}

export const listEnvelope = <T extends z.ZodTypeAny>(item: T) =>
  z.object({
    object: z.literal("list"),
    data: z.array(item),
    has_more: z.boolean(),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
  });
