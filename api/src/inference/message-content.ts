// A chat message's content as OpenAI's API takes it, shared by chat requests and fine-tuning lines (which the
// runner renders alike): a string, or an array of parts whose text parts are joined with newlines.
import { z } from "zod";

/**
 * A message's content: a string (of at most `maxChars`, when given), or OpenAI's array of parts, of which only
 * text parts are read.
 */
export const messageContentOf = (maxChars?: number) =>
  z
    .union([maxChars === undefined ? z.string() : z.string().max(maxChars), z.array(z.object({ type: z.string(), text: z.string().max(1_000_000).optional() }).passthrough()).max(256)], {
      error: "content must be a string or an array of text parts",
    })
    .superRefine((c, ctx) => {
      if (typeof c === "string") return;
      const bad = c.findIndex((p) => p.type !== "text" || typeof p.text !== "string");
      if (bad < 0) return;
      const message = c[bad].type === "text" ? 'a text part needs a string "text"' : `only text parts ({"type":"text","text":"…"}) are supported; this one is "${c[bad].type}"`;
      ctx.addIssue({ code: "custom", path: [bad], message });
    })
    .transform((c) => (typeof c === "string" ? c : c.map((p) => p.text).join("\n")));
