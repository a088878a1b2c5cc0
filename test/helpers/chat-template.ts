// Sets the chat template of a model folder (its tokenizer_config.json), keeping the config's other fields.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export async function useChatTemplate(modelDir: string, template: string): Promise<void> {
  const path = join(modelDir, "tokenizer_config.json");
  const config = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  await writeFile(path, JSON.stringify({ ...config, chat_template: template }, null, 2) + "\n");
}
