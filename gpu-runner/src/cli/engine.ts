// `tuneserve engine <subcommand>`: each subcommand is its own module exporting run(argv).
import { type Command, dispatch } from "./dispatch.js";

const subcommands: Record<string, Command> = {
  logits: { describe: "full-sequence logits of token rows as JSON", load: () => import("./engine-logits.js") },
  generate: { describe: "generate tokens (and text with a tokenizer) from a prompt", load: () => import("./engine-generate.js") },
  grads: { describe: "loss and LoRA gradient norms/sums of token rows as JSON", load: () => import("./engine-grads.js") },
  train: { describe: "train a LoRA adapter on a JSONL file (progress as JSON lines)", load: () => import("./engine-train.js") },
};

/** Dispatches `engine <subcommand> [flags]`. */
export async function run(argv: string[]): Promise<void> {
  await dispatch("tuneserve engine", subcommands, argv);
}
