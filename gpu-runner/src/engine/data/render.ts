// Records → token sequences with a per-token "train on it" flag: chat through the model's chat template
// (with the record's tools; only assistant turns, their tool calls included, are learned, unless weight 0), prompt/completion
// (only the completion + EOS), text (everything + EOS), and preference pairs (the conversation with each
// answer; only the answer's turn is scored).
import { templateMessages, templateTools, type SourceMessage, type SourceTool } from "../tokenizer/template-messages.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import type { TrainRecord } from "./records.js";

/** One tokenized sequence: `train[i]` says whether predicting `ids[i]` counts in the loss (train[0] is always false). */
export type Sequence = { ids: number[]; train: boolean[] };

/** A training example; a DPO pair's is its chosen sequence, with the rejected one beside it. */
export type Example = Sequence & { rejected?: Sequence };

/** A rendered record: `lastTurnOnly` marks a chat whose earlier assistant turns could only be context (see renderChat). */
export type RenderedExample = Example & { lastTurnOnly?: true };

/** Tokens an example puts through the model (both sequences of a pair). */
export const exampleTokens = (e: Example): number => e.ids.length + (e.rejected?.ids.length ?? 0);

type Tok = Pick<TextTokenizer, "encode" | "encodeChat" | "eosTokenIds">;

const startsWith = (a: number[], prefix: number[]) => prefix.length <= a.length && prefix.every((t, i) => a[i] === t);

/**
 * Chat: renders each prefix of the conversation to find where every assistant turn starts (after the
 * generation prompt) and ends (after its message), so the spans hold exactly the template's own tokens.
 * Within a span, tokens after the last EOS/end-of-turn id (ChatML's trailing "\n") are not learned.
 * A template that renders earlier turns otherwise once later ones follow (Mistral's puts the tools before
 * the last user turn) leaves only the last turn locatable: that one is learned and the rest are context
 * (`lastTurnOnly`), as serving would render its prompt. If even it cannot be located, the first turn that
 * could not be is named.
 */
function renderChat(source: (SourceMessage & { weight?: 0 | 1; name?: string })[], tools: SourceTool[] | undefined, tok: Tok, onlyLastTurn = false): Sequence & { lastTurnOnly?: true } {
  // As at inference, the template sees neither a turn's weight nor its participant name.
  const messages = templateMessages(source.map(({ weight: _weight, name: _name, ...m }) => m));
  const encode = (ms: typeof messages, generationPrompt = false) => tok.encodeChat(ms, { addGenerationPrompt: generationPrompt, tools: templateTools(tools) });
  const ids = encode(messages);
  const eos = new Set(tok.eosTokenIds);
  // A weight-0 turn (OpenAI's) is context only.
  const learned = messages.flatMap((m, i) => (m.role === "assistant" && source[i].weight !== 0 ? [i] : []));
  const turns = onlyLastTurn ? learned.filter((i) => i === messages.length - 1) : learned;
  // The mask over the given turns, or the first turn whose span the renderings cannot locate.
  const mask = (of: number[]): { train: boolean[] } | { unlocatable: number } => {
    const train = ids.map(() => false);
    for (const i of of) {
      const before = encode(messages.slice(0, i), true);
      const through = encode(messages.slice(0, i + 1));
      if (!startsWith(through, before) || !startsWith(ids, through)) return { unlocatable: i };
      let end = through.length;
      const lastEos = through.slice(before.length).findLastIndex((t) => eos.has(t));
      if (lastEos >= 0) end = before.length + lastEos + 1;
      for (let t = before.length; t < end; t++) train[t] = true;
    }
    return { train };
  };
  const all = mask(turns);
  if ("train" in all) return { ids, train: all.train };
  const last = turns.length > 1 ? mask(turns.slice(-1)) : all;
  if ("train" in last) return { ids, train: last.train, lastTurnOnly: true };
  throw new Error(`chat template: rendering messages 0..${all.unlocatable} does not give a prefix of the whole conversation, so assistant turns cannot be located; use a template that renders turn by turn`);
}

/** Tokenizes one record; the first token is never a target (nothing precedes it). */
export function renderRecord(r: TrainRecord, tok: Tok): RenderedExample {
  if (r.format === "preference") {
    // Only the answer is scored: the input's own assistant turns are context, as a prompt's are.
    const answer = (m: typeof r.chosen) => firstNotTrained(renderChat([...r.messages, m], r.tools, tok, true));
    return { ...answer(r.chosen), rejected: answer(r.rejected) };
  }
  const eos = tok.eosTokenIds.slice(0, 1);
  let ex: RenderedExample;
  if (r.format === "chat") ex = renderChat(r.messages, r.tools, tok);
  else if (r.format === "prompt_completion") {
    const p = tok.encode(r.prompt);
    // The completion goes on from the prompt, as an answer of /v1/completions does: no SentencePiece "▁" of its own.
    const c = [...tok.encode(r.completion, { addSpecialTokens: false, continues: true }), ...eos];
    ex = { ids: [...p, ...c], train: [...p.map(() => false), ...c.map(() => true)] };
  } else {
    const text = tok.encode(r.text);
    // A tokenizer that adds EOS itself (tokenizer_config's add_eos_token) has written it.
    const ids = eos.length && text[text.length - 1] === eos[0] ? text : [...text, ...eos];
    ex = { ids, train: ids.map(() => true) };
  }
  return firstNotTrained(ex);
}

function firstNotTrained<S extends Sequence>(s: S): S {
  if (s.train.length) s.train[0] = false;
  return s;
}

export type TokenizedData = {
  examples: Example[];
  /** Examples cut to the sequence length. */
  truncated: number;
  /** Examples left with no token to learn (after truncation, or too short to predict anything). */
  dropped: number;
  /** Preference pairs skipped because both answers render (or are cut) to the same tokens. */
  indistinct: number;
  /** Chat examples learned on their last assistant turn only, the template leaving the earlier ones unlocatable. */
  lastTurnOnly: number;
};

/**
 * Tokenizes every record and cuts each sequence to `seqLen` tokens, counting the cut and the unusable examples.
 * `file` names the records' file in errors (a job has a training and a validation file).
 */
export function tokenizeRecords(records: TrainRecord[], tok: Tok, seqLen: number, file = "data.jsonl"): TokenizedData {
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new Error(`seqLen=${seqLen} must be an integer ≥ 2`);
  const examples: Example[] = [];
  let truncated = 0;
  let dropped = 0;
  let indistinct = 0;
  let lastTurnOnly = 0;
  const cut = (s: Sequence): Sequence => (s.ids.length > seqLen ? { ids: s.ids.slice(0, seqLen), train: s.train.slice(0, seqLen) } : s);
  for (const [i, r] of records.entries()) {
    let rendered: RenderedExample;
    try {
      rendered = renderRecord(r, tok);
    } catch (err) {
      // A template that refuses a conversation (roles out of order) says why, not where: name the record.
      throw new Error(`${file}: record ${i + 1} (counting non-blank lines): ${(err as Error).message}`);
    }
    const { lastTurnOnly: onlyLast, ...ex } = rendered;
    if (onlyLast) lastTurnOnly++;
    const kept: Example = { ...cut(ex), ...(ex.rejected ? { rejected: cut(ex.rejected) } : {}) };
    if (exampleTokens(kept) < exampleTokens(ex)) truncated++;
    // A pair needs both answers, and two that differ once rendered: otherwise it teaches nothing.
    if (kept.rejected && sameSequence(kept, kept.rejected)) indistinct++;
    else if (kept.train.some(Boolean) && (!kept.rejected || kept.rejected.train.some(Boolean))) examples.push(kept);
    else dropped++;
  }
  return { examples, truncated, dropped, indistinct, lastTurnOnly };
}

const sameSequence = (a: Sequence, b: Sequence) => a.ids.length === b.ids.length && a.ids.every((t, i) => t === b.ids[i]);
