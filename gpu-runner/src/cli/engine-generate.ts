// `engine generate --model DIR [--adapter DIR] (--prompt TEXT [--chat [--system TEXT]] | --tokens "1,2,3") --max-tokens N
// [--temperature 0] [--top-k K] [--top-p P] [--seed S] [--stop STR]... [--ignore-eos] [--merge]`.
// Prints {"tokens":[…],"text":"…"}; "text" is present only when the model folder has a tokenizer.json
// (with --tokens and no tokenizer the output has tokens only). Generation stops at the EOS ids of the
// tokenizer and config.json unless --ignore-eos.
import { parseArgs } from "node:util";
import { generate } from "../engine/generate/generator.js";
import { LoadedModel } from "../engine/runtime/loaded-model.js";
import { loadTokenizer } from "../engine/tokenizer/tokenizer.js";
import { numberFlag, parseTokenRows, parseWithUsage, printedHelp, required } from "./args.js";

const USAGE =
  'usage: tuneserve engine generate --model DIR [--adapter DIR] (--prompt TEXT [--chat [--system TEXT]] | --tokens "1,2,3") --max-tokens N [--temperature 0] [--top-k K] [--top-p P] [--seed S] [--stop STR] [--ignore-eos] [--merge]\n' +
  "--prompt is encoded as it is; with --chat it is the user's message, put through the model's chat template (after\n" +
  "--system's message, if given) with the assistant's turn opened, as /v1/chat/completions does.";

export async function run(argv: string[]): Promise<void> {
  if (printedHelp(argv, USAGE)) return;
  const { values } = parseWithUsage(() => parseArgs({
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
  }), USAGE);
  const dir = required(values.model, "--model", USAGE);
  if ((values.prompt === undefined) === (values.tokens === undefined)) throw new Error(`give exactly one of --prompt or --tokens\n${USAGE}`);
  if (values.chat && values.prompt === undefined) throw new Error(`--chat needs --prompt (the user's message)\n${USAGE}`);
  if (values.system !== undefined && !values.chat) throw new Error(`--system goes with --chat\n${USAGE}`);
  const maxTokens = numberFlag(required(values["max-tokens"], "--max-tokens", USAGE), "--max-tokens", 0, { integer: true, min: 1 });
  const tokenizer = await loadTokenizer(dir);
  let tokens: number[];
  if (values.prompt !== undefined) {
    if (!tokenizer) throw new Error(`--prompt needs ${dir}/tokenizer.json; give --tokens instead`);
    const system = values.system === undefined ? [] : [{ role: "system", content: values.system }];
    tokens = values.chat ? tokenizer.encodeChat([...system, { role: "user", content: values.prompt }], { addGenerationPrompt: true }) : tokenizer.encode(values.prompt);
  } else {
    const rows = parseTokenRows(values.tokens as string);
    if (rows.length !== 1) throw new Error(`--tokens: give one row for generate (got ${rows.length})`);
    tokens = rows[0];
  }
  const model = await LoadedModel.load(dir, { adapter: values.adapter, merge: values.merge });
  try {
    const eos = values["ignore-eos"] ? [] : [...new Set([...(tokenizer?.eosTokenIds ?? []), ...model.cfg.eosTokenIds])];
    const { results } = await generate(
      model.session,
      [
        {
          tokens,
          maxTokens,
          temperature: numberFlag(values.temperature, "--temperature", 0, { min: 0 }),
          topK: numberFlag(values["top-k"], "--top-k", 0, { integer: true, min: 0 }),
          topP: numberFlag(values["top-p"], "--top-p", 1),
          seed: numberFlag(values.seed, "--seed", 0, { integer: true }),
          stopTokens: eos,
          stop: values.stop,
          continuesPrompt: !values.chat,
          adapterSlot: model.defaultSlot,
        },
      ],
      { loraFeeds: model.loraFeeds(), tokenizer },
    );
    const r = results[0];
    console.log(JSON.stringify(r.text === undefined ? { tokens: r.tokens } : { tokens: r.tokens, text: r.text }));
  } finally {
    await model.release();
  }
}
