// tokenizer_config.json's add_bos_token / add_eos_token, honoured as Hugging Face transformers does: where the
// config sets either, a text's encoding gets BOS first iff add_bos_token and EOS last iff add_eos_token, in place
// of what tokenizer.json's post-processor adds (LlamaTokenizerFast.update_post_processor, which Llama 2 and
// Mistral load with; transformers 5 does the same for any tokenizer whose config sets them, Llama 3's included).
// A flag left out keeps what the post-processor does on its side: LlamaTokenizerFast's defaults (BOS, no EOS)
// are what Llama 2's and Mistral's post-processors do. A flag set true whose token the config does not name
// adds none of its own (Qwen2 has no bos_token), as transformers 5 does, and leaves the post-processor's.

/** A special token by its text and id. */
export type Special = { text: string; id: number };

/** The special tokens a text's encoding starts and ends with. */
export type AddedSpecials = { before: Special[]; after: Special[] };

type Flags = { add_bos_token?: boolean | null; add_eos_token?: boolean | null };

const sameIds = (a: Special[], b: Special[]) => a.length === b.length && a.every((t, i) => t.id === b[i].id);

/**
 * What an encoding should add, given what the post-processor adds now (`current`) and the config's bos/eos
 * tokens (`named`); null where the config sets neither flag or they ask for what it does, so tokenizer.json
 * stays as it is.
 */
export function specialsToAdd(flags: Flags, current: AddedSpecials, named: { bos: Special | null; eos: Special | null }): AddedSpecials | null {
  const setBos = flags.add_bos_token ?? null;
  const setEos = flags.add_eos_token ?? null;
  if (setBos === null && setEos === null) return null;
  const side = (set: boolean | null, token: Special | null, kept: Special[]) => (set === null ? kept : !set ? [] : token ? [token] : kept);
  const want = { before: side(setBos, named.bos, current.before), after: side(setEos, named.eos, current.after) };
  return sameIds(want.before, current.before) && sameIds(want.after, current.after) ? null : want;
}

/** A TemplateProcessing post-processor (tokenizer.json's form) adding `before` and `after` around the text, and around each of a pair's. */
export function templateProcessing({ before, after }: AddedSpecials): Record<string, unknown> {
  const special = (ts: Special[], typeId: number) => ts.map((t) => ({ SpecialToken: { id: t.text, type_id: typeId } }));
  const around = (seq: "A" | "B", typeId: number) => [...special(before, typeId), { Sequence: { id: seq, type_id: typeId } }, ...special(after, typeId)];
  return {
    type: "TemplateProcessing",
    single: around("A", 0),
    pair: [...around("A", 0), ...around("B", 1)],
    special_tokens: Object.fromEntries([...before, ...after].map((t) => [t.text, { id: t.text, ids: [t.id], tokens: [t.text] }])),
  };
}
