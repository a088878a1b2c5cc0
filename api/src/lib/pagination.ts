// Cursor pagination the OpenAI way: ?after=<id>&limit=N over time-ordered ids, newest first.
import { z } from "@hono/zod-openapi";

export const listQuery = z.object({
  // Any well-formed id works as a cursor (ids sort by creation), even one deleted since; anything else is a mistake.
  after: z
    .string()
    .regex(/^[a-z]+[-_][0-9a-z]{24}$/, "after must be an object id, such as the last_id of the previous page")
    .optional()
    .openapi({ description: "id of the last object of the previous page" }),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

export type ListQuery = z.infer<typeof listQuery>;

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
