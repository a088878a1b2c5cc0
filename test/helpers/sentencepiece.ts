// A small SentencePiece tokenizer.json for tests: "▁" for spaces, BOS added by the post-processor, every
// printable ASCII character a token (no merges), in Llama 2's legacy form or Mistral v0.3's Metaspace form.

/** <unk>, <s>, </s>, "▁" and each printable ASCII character. */
function printableVocab(): Record<string, number> {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3 };
  for (let c = 33; c < 127; c++) vocab[String.fromCharCode(c)] = Object.keys(vocab).length;
  return vocab;
}

const special = (id: number, content: string) => ({ id, content, special: true, normalized: false, lstrip: false, rstrip: false, single_word: false });

/**
 * `vocab`: the pieces (ids 0–2 must be <unk>, <s>, </s>). `prepend`: Llama 2's Prepend("▁") normalizer, which puts "▁" before every piece between special tokens;
 * `metaspace`: a Metaspace pre-tokenizer with prepend_scheme "first" (only the text's start).
 */
export function sentencePieceTokenizer(style: "prepend" | "metaspace", vocab = printableVocab()): Record<string, unknown> {
  const spaces = { type: "Replace", pattern: { String: " " }, content: "▁" };
  return {
    version: "1.0",
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    normalizer: style === "prepend" ? { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, spaces] } : spaces,
    pre_tokenizer: style === "prepend" ? null : { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }],
    },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: [] },
  };
}
