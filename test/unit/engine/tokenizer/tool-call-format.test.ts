// Which tool-call format a chat template writes: Hermes blocks (Qwen2.5, the built-in model), Llama 3.1's JSON
// message, Mistral's array or newer `[TOOL_CALLS]name[ARGS]` calls, or one this server cannot read; and a Llama 3.1-style template loaded and rendering calls.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHATML_TEMPLATE, writeByteLevelTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/byte-level.js";
import { loadTokenizer, type TextTokenizer } from "../../../../gpu-runner/src/engine/tokenizer/tokenizer.js";
import { toolCallFormatOf, writesCallIds } from "../../../../gpu-runner/src/engine/tokenizer/tool-call-format.js";
import { LLAMA3_TOOLS_TEMPLATE, useLlama3Template } from "../../../helpers/llama3-template.js";
import { mistralV11Template } from "../../../helpers/mistral-v11-template.js";

// The lines of Meta's Llama 3.1 template (also 3.2's and 3.3's) that write a call and a tool's answer.
const META_LLAMA31_CALL =
  "{%- set tool_call = message.tool_calls[0].function %}\n" +
  "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n" +
  "{{- '{\"name\": \"' + tool_call.name + '\", ' }}\n" +
  "{{- '\"parameters\": ' }}\n" +
  "{{- tool_call.arguments | tojson }}\n" +
  "{{- \"}\" }}\n" +
  "{%- elif message.role == \"tool\" or message.role == \"ipython\" %}\n" +
  "{{- \"<|start_header_id|>ipython<|end_header_id|>\\n\\n\" }}";

// Mistral's v3 template (Mistral-7B-Instruct-v0.3), the lines that write calls.
const MISTRAL_V3_CALL =
  "{%- elif message.tool_calls is defined and message.tool_calls is not none %}\n" +
  "{{- \"[TOOL_CALLS] [\" }}\n" +
  "{%- for tool_call in message.tool_calls %}\n" +
  "{%- set out = tool_call.function|tojson %}\n" +
  "{{- out[:-1] }}\n" +
  "{{- ', \"id\": \"' + tool_call.id + '\"}' }}";

let dir: string;
let tok: TextTokenizer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tuneserve-llama3-tpl-"));
  await writeByteLevelTokenizer(dir);
  await useLlama3Template(dir);
  tok = (await loadTokenizer(dir))!;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("toolCallFormatOf", () => {
  it("reads Hermes blocks, and Llama 3.1's JSON calls with parameters", () => {
    expect(toolCallFormatOf(CHATML_TEMPLATE)).toBe("hermes");
    expect(toolCallFormatOf(META_LLAMA31_CALL)).toBe("llama3_json");
    expect(toolCallFormatOf(LLAMA3_TOOLS_TEMPLATE)).toBe("llama3_json");
  });

  it("reads Mistral's [TOOL_CALLS] array, and the [TOOL_CALLS]name[ARGS] calls of newer templates, with or without [CALL_ID]", () => {
    expect(toolCallFormatOf(MISTRAL_V3_CALL)).toBe("mistral");
    expect(toolCallFormatOf("{{- '[TOOL_CALLS]' + tool.function.name + '[ARGS]' + tool.function.arguments|tojson }}")).toBe("mistral_v11");
    expect(toolCallFormatOf(mistralV11Template())).toBe("mistral_v11");
    expect(toolCallFormatOf(mistralV11Template({ callIds: true }))).toBe("mistral_v11");
  });

  it("says a newer Mistral template writes call ids only when it holds [CALL_ID]", () => {
    expect(writesCallIds(mistralV11Template({ callIds: true }))).toBe(true);
    expect(writesCallIds(mistralV11Template())).toBe(false);
    expect(tok.writesCallIds).toBe(false);
  });

  it("reads no Llama 3.1 calls from Functionary-style templates, which answer tools in ipython turns but write calls otherwise", () => {
    // Meta's own instructions (the "parameters" format, the ipython environment) kept in the system prompt.
    const metaPrompt = "{{- 'Environment: ipython\\n' }}{{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}";
    const toolTurn = "{%- elif message.role == 'tool' %}{{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' + message.content }}";
    // v3.1: `<function=name>{arguments}</function>`; v3.2: `>>>name` and the arguments on the next line.
    const v31 = "{%- for call in message.tool_calls %}{{- '<function=' + call.function.name + '>' + call.function.arguments + '</function>' }}{%- endfor %}";
    const v32 = "{%- for call in message.tool_calls %}{{- '>>>' + call.function.name + '\\n' + call.function.arguments }}{%- endfor %}";
    expect(toolCallFormatOf(metaPrompt + v31 + toolTurn)).toBeNull();
    expect(toolCallFormatOf(metaPrompt + v32 + toolTurn)).toBeNull();
    // Meta's prompt with its own calls is still Llama 3.1's.
    expect(toolCallFormatOf(metaPrompt + META_LLAMA31_CALL)).toBe("llama3_json");
  });

  it("reads no format from templates that write neither", () => {
    expect(toolCallFormatOf("{{ message.content }}")).toBeNull();
    // Qwen3-Coder's XML within <tool_call>.
    expect(toolCallFormatOf("<tool_call>\n<function={{ call.name }}>")).toBeNull();
    // A "parameters" key alone (a tool's schema described in text) is not Llama's call.
    expect(toolCallFormatOf('{{ \'"parameters": \' + (tool.parameters | tojson) }}')).toBeNull();
    // Within <tool_call> tags the calls are Hermes blocks, whatever key they use.
    expect(toolCallFormatOf('<tool_call>{"name": "{{ tool_call.name }}", "parameters": {{ tool_call.arguments | tojson }}}</tool_call>')).toBeNull();
  });
});

describe("a Llama 3.1-style template", () => {
  it("is loaded with its format, and renders a call as the whole message and its answer as an ipython turn", () => {
    expect(tok.toolCallFormat).toBe("llama3_json");
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }];
    const messages = [
      { role: "user", content: "Weather?" },
      { role: "assistant", content: "", tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: { city: "Oslo" } } }] },
      { role: "tool", tool_call_id: "c1", content: "4 degrees" },
    ];
    const text = tok.applyChatTemplate(messages, { tools, addGenerationPrompt: true });
    expect(text).toContain('<|im_start|>assistant\n\n{"name": "get_weather", "parameters": {"city": "Oslo"}}<|im_end|>');
    expect(text).toContain("<|im_start|>ipython\n\n4 degrees<|im_end|>");
    expect(text.endsWith("<|im_start|>assistant\n\n")).toBe(true);
  });
});
