// The error envelope: OpenAI's error type beside our code, and x-should-retry where a client's automatic retry
// cannot help (OpenAI's clients retry 409, 429 and 5xx, sleeping whatever Retry-After says).
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { ApiError, errorResponse } from "../../../api/src/errors.js";

function answer(err: ApiError) {
  const app = new Hono();
  app.onError((e, c) => errorResponse(c, e));
  app.get("/", () => {
    throw err;
  });
  return app.request("/");
}

describe("errorResponse", () => {
  it("gives each code OpenAI's error type", async () => {
    const body = await (await answer(new ApiError("quota_exceeded", "used up"))).json();
    expect(body.error).toEqual({ code: "quota_exceeded", message: "used up", param: null, type: "insufficient_quota", request_id: "unknown" });
    expect((await (await answer(new ApiError("unavailable", "down"))).json()).error.type).toBe("server_error");
  });

  it("says x-should-retry: false of a 409, 429 or 503 without a short Retry-After, and nothing otherwise", async () => {
    const hint = async (err: ApiError) => (await answer(err)).headers.get("x-should-retry");
    expect(await hint(new ApiError("conflict", "already cancelled"))).toBe("false");
    expect(await hint(new ApiError("quota_exceeded", "the month's tokens", null, { "Retry-After": "1296000" }))).toBe("false");
    expect(await hint(new ApiError("unavailable", "inference is off"))).toBe("false");
    expect(await hint(new ApiError("conflict", "still running", null, { "Retry-After": "1" }))).toBeNull();
    expect(await hint(new ApiError("rate_limited", "this minute", null, { "Retry-After": "60" }))).toBeNull();
    expect(await hint(new ApiError("unavailable", "no runner", null, { "Retry-After": "5" }))).toBeNull();
    expect(await hint(new ApiError("invalid_request", "bad"))).toBeNull();
  });
});
