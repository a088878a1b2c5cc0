// A runner that cannot register says which setting to check: the token on a 401, the API URL when nothing answered.
import { describe, expect, it } from "vitest";
import { ApiCallError } from "../../../gpu-runner/src/runner/api-client.js";
import { explainStartFailure } from "../../../gpu-runner/src/runner/start-failure.js";

const config = { apiUrl: "http://api:8787" };

describe("explainStartFailure", () => {
  it("names the token setting when the API refuses the runner token", () => {
    const err = new ApiCallError("POST /internal/v1/runners/register: 401 unauthorized invalid runner token", 401, "unauthorized", false);
    expect((explainStartFailure(err, config) as Error).message).toBe(
      "POST /internal/v1/runners/register: 401 unauthorized invalid runner token: --token / TUNESERVE_RUNNER_TOKEN must be the API's TUNESERVE_RUNNER_TOKEN",
    );
  });
  it("names the API URL setting when retries ran out without an answer", () => {
    const err = new ApiCallError("POST /internal/v1/runners/register: gave up after 6 tries: fetch failed (connect ECONNREFUSED)", null, null, true);
    expect((explainStartFailure(err, config) as Error).message).toMatch(/: is the API at http:\/\/api:8787 \(--api-url \/ TUNESERVE_API_URL\) up and reachable from here\?$/);
  });
  it("leaves other failures as they are", () => {
    const conflict = new ApiCallError("POST /internal/v1/runners/register: 409 conflict name taken", 409, "conflict", false);
    expect(explainStartFailure(conflict, config)).toBe(conflict);
    const other = new Error("disk full");
    expect(explainStartFailure(other, config)).toBe(other);
  });
});
