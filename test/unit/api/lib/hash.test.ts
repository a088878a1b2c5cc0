// secretsEqual, the comparison of bearer tokens and blob-link signatures: equal secrets pass, any other string
// is refused whatever its length, and both sides are always digested, so its time cannot tell a token's length.
import { afterEach, describe, expect, it, vi } from "vitest";
import { secretsEqual } from "../../../../api/src/lib/hash.js";

const token = "adm_0123456789abcdef0123456789abcdef";

afterEach(() => vi.restoreAllMocks());

describe("secretsEqual", () => {
  it("accepts the same secret, including an empty one", async () => {
    expect(await secretsEqual(token, `${token}`)).toBe(true);
    expect(await secretsEqual("", "")).toBe(true);
  });

  it("refuses a wrong token of another length: shorter, longer, a prefix, an extension, empty", async () => {
    for (const wrong of ["x", token.slice(0, -1), `${token}0`, `${token}${token}`, "", "Bearer " + token]) {
      expect(await secretsEqual(wrong, token), wrong).toBe(false);
      expect(await secretsEqual(token, wrong), wrong).toBe(false);
    }
  });

  it("refuses a wrong token of the same length, wherever it differs", async () => {
    for (const at of [0, 17, token.length - 1]) {
      const wrong = token.slice(0, at) + (token[at] === "0" ? "1" : "0") + token.slice(at + 1);
      expect(await secretsEqual(wrong, token), `differs at ${at}`).toBe(false);
    }
  });

  it("digests both sides into fixed-length MACs even when the lengths differ, rather than stopping at the length", async () => {
    const sign = vi.spyOn(crypto.subtle, "sign");
    expect(await secretsEqual("short", token)).toBe(false);
    expect(sign).toHaveBeenCalledTimes(2);
    const signed = sign.mock.calls.map(([, , data]) => new TextDecoder().decode(data as Uint8Array));
    expect(signed.sort()).toEqual([token, "short"].sort());
    const macs = await Promise.all(sign.mock.results.map((r) => r.value as Promise<ArrayBuffer>));
    expect(macs.map((m) => m.byteLength)).toEqual([32, 32]);
  });
});
