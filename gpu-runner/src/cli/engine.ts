// `tuneserve engine <subcommand>`: each subcommand is its own module exporting run(argv).
type Sub = { describe: string; load: () => Promise<{ run(argv: string[]): Promise<void> }> };

const subcommands: Record<string, Sub> = {
  logits: { describe: "full-sequence logits of token rows as JSON", load: () => import("./engine-logits.js") },
  generate: { describe: "generate tokens (and text with a tokenizer) from a prompt", load: () => import("./engine-generate.js") },
  grads: { describe: "loss and LoRA gradient norms/sums of token rows as JSON", load: () => import("./engine-grads.js") },
  train: { describe: "train a LoRA adapter on a JSONL file (progress as JSON lines)", load: () => import("./engine-train.js") },
};

/** Dispatches `engine <subcommand> [flags]`. */
export async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const sub = name ? subcommands[name] : undefined;
  if (!sub) {
    const lines = Object.entries(subcommands).map(([n, s]) => `  ${n.padEnd(10)} ${s.describe}`);
    console.error(`usage: tuneserve engine <subcommand> [options]\n\n${lines.join("\n")}`);
    process.exitCode = name && name !== "help" && name !== "--help" ? 2 : 0;
    return;
  }
  await (await sub.load()).run(rest);
}
