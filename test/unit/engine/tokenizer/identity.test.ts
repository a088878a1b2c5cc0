// The tokenization identity a checkpoint's fingerprint holds: one hash per tokenizer file (null when absent) and
// the end-of-sequence ids, and the words naming what changed between two of them.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { tokenizationChanges, tokenizationIdentity } from "../../../../gpu-runner/src/engine/tokenizer/identity.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-tok-identity-"));
  await writeFile(join(dir, "tokenizer.json"), "{}");
  await writeFile(join(dir, "tokenizer_config.json"), '{"chat_template":"a"}');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it("hashes each tokenizer file (an absent one as null) with the end-of-sequence ids", async () => {
  const id = JSON.parse(await tokenizationIdentity(dir, [2, 5]));
  expect(Object.keys(id)).toEqual(["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "eos_token_ids"]);
  expect(id["tokenizer.json"]).toBe("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  expect(id["chat_template.jinja"]).toBeNull();
  expect(id.eos_token_ids).toBe("2,5");
});

it("names the files that changed, and the end-of-sequence ids", async () => {
  const before = await tokenizationIdentity(dir, [2]);
  expect(tokenizationChanges(before, await tokenizationIdentity(dir, [2]))).toEqual([]);
  await writeFile(join(dir, "tokenizer_config.json"), '{"chat_template":"b"}');
  await writeFile(join(dir, "chat_template.jinja"), "b");
  expect(tokenizationChanges(before, await tokenizationIdentity(dir, [3]))).toEqual(["tokenizer_config.json", "chat_template.jinja", "end-of-sequence token ids (tokenizer_config.json, generation_config.json, config.json)"]);
  expect(tokenizationChanges("not json", before)).toEqual(["tokenizer files"]);
});
