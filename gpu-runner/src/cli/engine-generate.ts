// `engine generate --model DIR [--adapter DIR] (--prompt TEXT [--chat [--system TEXT]] | --tokens "1,2,3") --max-tokens N
// [--temperature 0] [--top-k K] [--top-p P] [--seed S] [--stop STR]... [--ignore-eos] [--merge]`.
// Prints {"tokens":[…],"text":"…"}; "text" is present only when the model folder has a tokenizer.json
// (with --tokens and no tokenizer the output has tokens only). Generation stops at the EOS ids of the
// tokenizer and config.json unless --ignore-eos.
import { generate } from "../engine/generate/generator.js";
import { GREEDY_TEMPERATURE } from "../engine/generate/sampling.js";
import { LoadedModel } from "../engine/runtime/loaded-model.js";
import { loadTokenizer } from "../engine/tokenizer/tokenizer.js";
import { checkVocabulary, existingFolder, helpHint, numberFlag, parseFlags, parseTokenRows, printedHelp, required, UsageError } from "./args.js";

const USAGE =
  'usage: tuneserve engine generate --model DIR [--adapter DIR] (--prompt TEXT [--chat [--system TEXT]] | --tokens "1,2,3") --max-tokens N [--temperature 0] [--top-k K] [--top-p P] [--seed S] [--stop STR] [--ignore-eos] [--merge]\n' +
  "--prompt is encoded as it is; with --chat it is the user's message, put through the model's chat template (after\n" +
  "--system's message, if given) with the assistant's turn opened, as /v1/chat/completions does.";

export async function run(argv: string[]): Promise<void> {
  if (printedHelp(argv, USAGE)) return;
  const { values } = parseFlags({
    args: argv,
    options: {
      model: { type: "string" },
      adapter: { type: "string" },
      merge: { type: "boolean" },
      prompt: { type: "string" },
      chat: { type: "boolean" },
      system: { type: "string" },
      tokens: { type: "string" },
      "max-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      seed: { type: "string" },
      stop: { type: "string", multiple: true },
      "ignore-eos": { type: "boolean" },
    },
  }, USAGE);
  const dir = existingFolder(required(values.model, "--model", USAGE), "--model", "config.json");
  if (values.adapter !== undefined) existingFolder(values.adapter, "--adapter", "adapter_config.json");
  if ((values.prompt === undefined) === (values.tokens === undefined)) throw new UsageError(`give exactly one of --prompt or --tokens ${helpHint(USAGE)}`);
  if (values.chat && values.prompt === undefined) throw new UsageError(`--chat needs --prompt (the user's message)`);
  if (values.system !== undefined && !values.chat) throw new UsageError(`--system goes with --chat`);
  const maxTokens = numberFlag(required(values["max-tokens"], "--max-tokens", USAGE), "--max-tokens", 0, { integer: true, min: 1 });
  // Checked before the model loads, so a bad value fails at once and names its flag.
  const sampling = {
    temperature: numberFlag(values.temperature, "--temperature", 0, { min: 0 }),
    topK: numberFlag(values["top-k"], "--top-k", 0, { integer: true, min: 0 }),
    topP: numberFlag(values["top-p"], "--top-p", 1, { above: 0, max: 1 }),
    seed: numberFlag(values.seed, "--seed", 0, { integer: true }),
  };
  if (values.stop?.includes("")) throw new UsageError(`--stop is empty: a stop string needs at least one character`);
  const tokenizer = await loadTokenizer(dir);
  let tokens: number[];
  if (values.prompt !== undefined) {
    if (!tokenizer) throw new UsageError(`--prompt needs ${dir}/tokenizer.json; give --tokens instead`);
    const system = values.system === undefined ? [] : [{ role: "system", content: values.system }];
    tokens = values.chat ? tokenizer.encodeChat([...system, { role: "user", content: values.prompt }], { addGenerationPrompt: true }) : tokenizer.encode(values.prompt);
  } else {
    const rows = parseTokenRows(values.tokens as string);
    if (rows.length !== 1) throw new UsageError(`--tokens: give one row for generate (got ${rows.length})`);
    tokens = rows[0];
  }
  // Greedy decoding runs many tokens per session.run through the decode loop (a second session, built only then).
  const greedy = sampling.temperature <= GREEDY_TEMPERATURE;
  const model = await LoadedModel.load(dir, { adapter: values.adapter, merge: values.merge, decodeLoop: greedy });
  try {
    if (values.tokens !== undefined) checkVocabulary([tokens], model.cfg.vocab);
    const eos = values["ignore-eos"] ? [] : [...new Set([...(tokenizer?.eosTokenIds ?? []), ...model.cfg.eosTokenIds])];
    const { results } = await generate(
      model.session,
      [
        {
          tokens,
          maxTokens,
          ...sampling,
          stopTokens: eos,
          stop: values.stop,
          continuesPrompt: !values.chat,
          adapterSlot: model.defaultSlot,
        },
      ],
      { loraFeeds: model.loraFeeds(), tokenizer, decodeLoop: model.decodeLoop },
    );
    const r = results[0];
    console.log(JSON.stringify(r.text === undefined ? { tokens: r.tokens } : { tokens: r.tokens, text: r.text }));
  } finally {
    await model.release();
  }
}
