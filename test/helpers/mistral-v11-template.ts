// Small chat templates that write tool calls and their answers as Mistral's newer ones do (tokenizer v11+:
// Mistral Small 3.x, Magistral, Devstral), on the byte-level tokenizer (which has no [TOOL_CALLS] or [ARGS]
// token: the tags are text here, as in mistral-template.ts): the tools in [AVAILABLE_TOOLS] before the last user
// turn, an assistant's content and then each call as `[TOOL_CALLS]name[ARGS]{arguments}`, a tool's answer in
// [TOOL_RESULTS]…[/TOOL_RESULTS]. The `[CALL_ID]` variant writes each call's id between its name and [ARGS]
// and, as Mistral's, refuses ids that are not 9 characters long (the tokenizer renames others: call-ids.ts).
import { useChatTemplate } from "./chat-template.js";

/** The template, writing call ids after `[CALL_ID]` when `callIds`. */
export const mistralV11Template = (o: { callIds?: boolean } = {}): string =>
  "{{- bos_token }}" +
  "{%- if messages[0]['role'] == 'system' %}{{- '[SYSTEM_PROMPT]' + messages[0]['content'] + '[/SYSTEM_PROMPT]' }}{%- set loop_messages = messages[1:] %}" +
  "{%- else %}{%- set loop_messages = messages %}{%- endif %}" +
  "{%- set ns = namespace(last_user=-1) %}" +
  "{%- for message in loop_messages %}{%- if message['role'] == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}" +
  "{%- for message in loop_messages %}" +
  "{%- if message['role'] == 'user' %}" +
  "{%- if tools is defined and tools is not none and tools|length > 0 and loop.index0 == ns.last_user %}{{- '[AVAILABLE_TOOLS]' + (tools | tojson) + '[/AVAILABLE_TOOLS]' }}{%- endif %}" +
  "{{- '[INST]' + message['content'] + '[/INST]' }}" +
  "{%- elif message['role'] == 'assistant' %}" +
  "{%- if message['content'] %}{{- message['content'] }}{%- endif %}" +
  "{%- if message['tool_calls'] is defined and message['tool_calls'] is not none %}" +
  "{%- for tool in message['tool_calls'] %}" +
  "{%- set arguments = tool['function']['arguments'] %}" +
  "{%- if arguments is not string %}{%- set arguments = arguments | tojson %}{%- elif arguments == '' %}{%- set arguments = '{}' %}{%- endif %}" +
  (o.callIds
    ? "{%- if tool['id'] is not defined or tool['id'] | length != 9 %}{{- raise_exception('Tool call must have an id of 9 characters or numbers.') }}{%- endif %}" +
      "{{- '[TOOL_CALLS]' + tool['function']['name'] + '[CALL_ID]' + tool['id'] + '[ARGS]' + arguments }}"
    : "{{- '[TOOL_CALLS]' + tool['function']['name'] + '[ARGS]' + arguments }}") +
  "{%- endfor %}" +
  "{%- endif %}" +
  "{{- eos_token }}" +
  "{%- elif message['role'] == 'tool' %}" +
  "{{- '[TOOL_RESULTS]' + message['content'] + '[/TOOL_RESULTS]' }}" +
  "{%- else %}{{- raise_exception('Only user, assistant and tool roles are supported after the system prompt.') }}" +
  "{%- endif %}" +
  "{%- endfor %}";

/** Puts the newer Mistral-style template in a model folder's tokenizer_config.json (a byte-level tokenizer's). */
export const useMistralV11Template = (modelDir: string, o: { callIds?: boolean } = {}): Promise<void> => useChatTemplate(modelDir, mistralV11Template(o));
