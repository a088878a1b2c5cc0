// A small chat template that writes tool calls and their answers as Mistral's v3 template does
// (Mistral-7B-Instruct-v0.3), on the byte-level tokenizer (which has no [TOOL_CALLS] token: the tags are text
// here): the tools in [AVAILABLE_TOOLS] before the last user turn, an assistant's calls as `[TOOL_CALLS] [` and
// each call's `{"name", "arguments"}` with its `"id"` added, a tool's answer in [TOOL_RESULTS]. As Mistral's,
// it refuses call ids that are not 9 characters long (the tokenizer renames others for it: call-ids.ts).
import { useChatTemplate } from "./chat-template.js";

export const MISTRAL_TOOLS_TEMPLATE =
  "{{- bos_token }}" +
  "{%- set ns = namespace(last_user=-1) %}" +
  "{%- for message in messages %}{%- if message.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}" +
  "{%- for message in messages %}" +
  "{%- if message.role == 'user' %}" +
  "{%- if tools and loop.index0 == ns.last_user %}{{- '[AVAILABLE_TOOLS] ' + (tools | tojson) + '[/AVAILABLE_TOOLS]' }}{%- endif %}" +
  "{{- '[INST] ' + message.content + '[/INST]' }}" +
  "{%- elif message.tool_calls %}" +
  "{{- '[TOOL_CALLS] [' }}" +
  "{%- for tool_call in message.tool_calls %}" +
  "{%- set out = tool_call.function | tojson %}" +
  "{{- out[:-1] }}" +
  "{%- if tool_call.id | length != 9 %}{{- raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}{%- endif %}" +
  "{{- ', \"id\": \"' + tool_call.id + '\"}' }}" +
  "{%- if not loop.last %}{{- ', ' }}{%- else %}{{- ']' + eos_token }}{%- endif %}" +
  "{%- endfor %}" +
  "{%- elif message.role == 'assistant' %}" +
  "{{- ' ' + message.content + eos_token }}" +
  "{%- elif message.role == 'tool' %}" +
  "{{- '[TOOL_RESULTS] {\"content\": ' + message.content + ', \"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}" +
  "{%- endif %}" +
  "{%- endfor %}";

/** Puts the Mistral-style template in a model folder's tokenizer_config.json (a byte-level tokenizer's). */
export const useMistralTemplate = (modelDir: string): Promise<void> => useChatTemplate(modelDir, MISTRAL_TOOLS_TEMPLATE);
