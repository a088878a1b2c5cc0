// Call ids as Mistral's templates want them (9 letters or digits): others are renamed, the same in a call and in
// the tool turn answering it, so that the template renders OpenAI's and this API's ids.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nineCharacterCallIds } from "../../../../gpu-runner/src/engine/tokenizer/call-ids.js";
import { writeByteLevelTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/byte-level.js";
import { loadTokenizer, type TextTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { useMistralTemplate } from "../../../helpers/mistral-template.js";
import { useMistralV11Template } from "../../../helpers/mistral-v11-template.js";

const call = (id: string, name = "f") => ({ id, type: "function", function: { name, arguments: {} } });
const history = (ids: string[]) => [
  { role: "user", content: "q" },
  { role: "assistant", content: "", tool_calls: ids.map((id) => call(id)) },
  ...ids.map((id) => ({ role: "tool", tool_call_id: id, content: "1" })),
];

describe("nineCharacterCallIds", () => {
  it("keeps ids of 9 letters or digits and renames others alike in calls and answers, without clashing", () => {
    const got = nineCharacterCallIds(history(["abcDEF123", "call_req_1_0", "c00000001", "call_req_1_1"]));
    const ids = (got[1].tool_calls as { id: string }[]).map((c) => c.id);
    expect(ids[0]).toBe("abcDEF123");
    expect(ids[2]).toBe("c00000001");
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9]{9}$/);
    expect(new Set(ids).size).toBe(4);
    expect(got.slice(2).map((m) => m.tool_call_id)).toEqual(ids);
    // The same conversation renames the same way (a prompt that grows keeps its start).
    expect(nineCharacterCallIds(history(["abcDEF123", "call_req_1_0", "c00000001", "call_req_1_1"]))).toEqual(got);
  });

  it("leaves messages without calls as they are", () => {
    const plain = [{ role: "user", content: "hi" }];
    expect(nineCharacterCallIds(plain)).toBe(plain);
  });
});

describe("a Mistral-style template", () => {
  let dir: string;
  let tok: TextTokenizer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tuneserve-mistral-ids-"));
    await writeByteLevelTokenizer(dir);
    await useMistralTemplate(dir);
    tok = (await loadTokenizer(dir))!;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("renders calls whose ids are OpenAI's, each answer naming its call's new id", () => {
    expect(tok.toolCallFormat).toBe("mistral");
    const text = tok.applyChatTemplate(history(["call_req_1_0"]));
    const id = text.match(/"id": "([A-Za-z0-9]{9})"/)?.[1];
    expect(id).toBeDefined();
    expect(text).toContain(`[TOOL_CALLS] [{"name": "f", "arguments": {}, "id": "${id}"}]`);
    expect(text).toContain(`"call_id": "${id}"}[/TOOL_RESULTS]`);
  });
});

describe("a newer Mistral-style template ([TOOL_CALLS]name[CALL_ID]id[ARGS]…)", () => {
  let dir: string;
  let tok: TextTokenizer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tuneserve-mistral-v11-ids-"));
    await writeByteLevelTokenizer(dir);
    await useMistralV11Template(dir, { callIds: true });
    tok = (await loadTokenizer(dir))!;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("renders each call after its own [TOOL_CALLS], its OpenAI-style id renamed to 9 characters, and the results", () => {
    expect(tok.toolCallFormat).toBe("mistral_v11");
    const text = tok.applyChatTemplate(history(["call_req_1_0", "call_req_1_1"]), { tools: [{ type: "function", function: { name: "f" } }] });
    const ids = [...text.matchAll(/\[CALL_ID\]([A-Za-z0-9]{9})\[ARGS\]/g)].map((m) => m[1]);
    expect(ids).toHaveLength(2);
    expect(text).toContain(`[TOOL_CALLS]f[CALL_ID]${ids[0]}[ARGS]{}[TOOL_CALLS]f[CALL_ID]${ids[1]}[ARGS]{}`);
    expect(text).toContain('[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "f"}}][/AVAILABLE_TOOLS][INST]q[/INST]');
    expect(text).toContain("[TOOL_RESULTS]1[/TOOL_RESULTS][TOOL_RESULTS]1[/TOOL_RESULTS]");
  });
});
