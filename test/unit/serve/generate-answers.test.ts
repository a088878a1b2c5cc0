// What the runner says back beside an answer: the response format it applied, and with tool calls the format the
// template writes them in (and, for mistral_v11, whether it writes call ids), which the API reads the calls by.
import { describe, expect, it } from "vitest";
import { formatOf } from "../../../gpu-runner/src/serve/generate-answers.js";
import type { ServeSubmit } from "../../../gpu-runner/src/serve/worker-protocol.js";

const submit = (format: ServeSubmit["format"]) => [{ format } as ServeSubmit];

describe("formatOf", () => {
  it("says tool_call_ids beside mistral_v11 calls only, as the template writes ids or not", () => {
    expect(formatOf(submit("tool_auto"), { toolCallFormat: "mistral_v11", writesCallIds: false })).toEqual({ response_format: "tool_auto", tool_call_format: "mistral_v11", tool_call_ids: false });
    expect(formatOf(submit("tool_call"), { toolCallFormat: "mistral_v11", writesCallIds: true })).toEqual({ response_format: "tool_call", tool_call_format: "mistral_v11", tool_call_ids: true });
    expect(formatOf(submit("tool_auto"), { toolCallFormat: "hermes", writesCallIds: false })).toEqual({ response_format: "tool_auto", tool_call_format: "hermes" });
    expect(formatOf(submit("text"), { toolCallFormat: "mistral_v11", writesCallIds: true })).toEqual({ response_format: "text" });
  });
});
