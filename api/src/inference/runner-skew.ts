// What the API says when a runner's answer lacks what the request asked for (response_format, n choices,
// logprobs): the runner predates that feature, whether the answer came whole (complete.ts) or streamed (stream.ts);
// and what it logs when a runner newer than it says what it cannot read, which the answer works around.
import { ApiError } from "../errors.js";

export const runnerPredates = {
  format: (format: string) => `the runner did not apply response_format ${format}: it predates it; upgrade the runners`,
  choices: (got: number, asked: number) => `the runner answered ${got} of ${asked} choices: it predates n; upgrade the runners`,
  logprobs: "the runner sent no logprobs: it predates them; upgrade the runners",
};

/**
 * The 500 for a runner that predates what the request asked for. A retry would meet the same runners, so the
 * OpenAI clients are told not to retry (they would otherwise resend a 500 twice).
 */
export const runnerSkew = (message: string) => new ApiError("internal_error", message, null, { "x-should-retry": "false" });

/**
 * The log line for a tool_call_format newer than this API: its calls cannot be read, so the answer goes out as the
 * model's text (a 200, not a 500 for the whole answer), and the operator learns that the API wants upgrading.
 */
export const warnUnknownCallFormat = (requestId: string, format: string) =>
  console.warn(`[${requestId}] the runner wrote tool calls in tool_call_format ${JSON.stringify(format)}, which this API does not know: answered as text content; upgrade the API`);
