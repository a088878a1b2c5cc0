// tokenizer_config.json's add_bos_token / add_eos_token, honoured as Hugging Face transformers does: where the
// config sets either, a text's encoding gets BOS first iff add_bos_token and EOS last iff add_eos_token, in place
// of what tokenizer.json's post-processor adds (LlamaTokenizerFast.update_post_processor, which Llama 2 and
// Mistral load with; transformers 5 does the same for any tokenizer whose config sets them, Llama 3's included).
// A flag left out keeps what the post-processor does with its token: LlamaTokenizerFast's defaults (BOS, no
// EOS) are what Llama 2's and Mistral's post-processors do. A flag whose token the config does not name adds
// nothing (Qwen2 has no bos_token), as transformers 5 does.

/** The special tokens a text's encoding starts and ends with (null: none). */
export type AddedSpecials = { bos: { text: string; id: number } | null; eos: { text: string; id: number } | null };

type Flags = { add_bos_token?: boolean | null; add_eos_token?: boolean | null };

/**
 * What an encoding should add, or null where the config sets neither flag or they agree with `current` (what
 * the post-processor adds now), so tokenizer.json stays as it is.
 */
export function specialsToAdd(flags: Flags, current: { bos: boolean; eos: boolean }, tokens: AddedSpecials): AddedSpecials | null {
  const setBos = flags.add_bos_token ?? null;
  const setEos = flags.add_eos_token ?? null;
  if (setBos === null && setEos === null) return null;
  const bos = (setBos ?? current.bos) ? tokens.bos : null;
  const eos = (setEos ?? current.eos) ? tokens.eos : null;
  return (bos !== null) === current.bos && (eos !== null) === current.eos ? null : { bos, eos };
}

/** A TemplateProcessing post-processor (tokenizer.json's form) adding `bos` first and `eos` last, to each of a pair's texts. */
export function templateProcessing({ bos, eos }: AddedSpecials): Record<string, unknown> {
  const special = (t: { text: string } | null, typeId: number) => (t ? [{ SpecialToken: { id: t.text, type_id: typeId } }] : []);
  const around = (seq: "A" | "B", typeId: number) => [...special(bos, typeId), { Sequence: { id: seq, type_id: typeId } }, ...special(eos, typeId)];
  const tokens = [bos, eos].filter((t) => t !== null);
  return {
    type: "TemplateProcessing",
    single: around("A", 0),
    pair: [...around("A", 0), ...around("B", 1)],
    special_tokens: Object.fromEntries(tokens.map((t) => [t.text, { id: t.text, ids: [t.id], tokens: [t.text] }])),
  };
}
