// A small chat template that writes tool calls and their answers as Meta's Llama 3.1/3.2/3.3 templates do,
// spelled with the byte-level tokenizer's ChatML markers (the built-in model has no Llama header tokens): the
// tools listed as JSON with the "parameters" format asked for, an assistant call as the whole message
// `{"name": "<fn>", "parameters": <arguments>}` (one call per turn), a tool's answer in an `ipython` turn.
import { useChatTemplate } from "./chat-template.js";

export const LLAMA3_TOOLS_TEMPLATE =
  "{{- bos_token }}" +
  "{%- if tools %}" +
  "{{- '<|im_start|>system\\n\\nEnvironment: ipython\\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\\n\\n' }}" +
  "{{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}. Do not use variables.\\n\\n' }}" +
  "{%- for t in tools %}{{- t | tojson }}{{- '\\n\\n' }}{%- endfor %}" +
  "{{- '<|im_end|>' }}" +
  "{%- endif %}" +
  "{%- for message in messages %}" +
  "{%- if message.role == 'assistant' and message.tool_calls %}" +
  "{%- if message.tool_calls | length != 1 %}{{- raise_exception('This model only supports single tool-calls at once!') }}{%- endif %}" +
  "{%- set tool_call = message.tool_calls[0].function %}" +
  "{{- '<|im_start|>assistant\\n\\n' }}" +
  "{{- '{\"name\": \"' + tool_call.name + '\", ' }}" +
  "{{- '\"parameters\": ' }}" +
  "{{- tool_call.arguments | tojson }}" +
  "{{- '}' }}" +
  "{{- '<|im_end|>' }}" +
  "{%- elif message.role == 'tool' or message.role == 'ipython' %}" +
  "{{- '<|im_start|>ipython\\n\\n' + message.content + '<|im_end|>' }}" +
  "{%- else %}" +
  "{{- '<|im_start|>' + message.role + '\\n\\n' + message.content + '<|im_end|>' }}" +
  "{%- endif %}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n\\n' }}{%- endif %}";

/** Puts the Llama 3.1-style template in a model folder's tokenizer_config.json (a byte-level tokenizer's). */
export const useLlama3Template = (modelDir: string): Promise<void> => useChatTemplate(modelDir, LLAMA3_TOOLS_TEMPLATE);
