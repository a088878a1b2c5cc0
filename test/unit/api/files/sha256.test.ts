import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createSha256 } from "../../../../api/src/files/sha256.js";

const hex = (data: Uint8Array, chunk: number) => {
  const h = createSha256();
  for (let i = 0; i < data.length; i += chunk) h.update(data.subarray(i, i + chunk));
  return h.digestHex();
};
const enc = (s: string) => new TextEncoder().encode(s);

describe("createSha256", () => {
  it("matches the FIPS 180-2 test vectors", () => {
    expect(hex(enc(""), 1)).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(hex(enc("abc"), 1)).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(hex(enc("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), 7)).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
    expect(hex(new Uint8Array(1_000_000).fill(0x61), 4096)).toBe("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  });

  it("agrees with node:crypto for every length around the block and padding edges, in any chunking", () => {
    const data = new Uint8Array(300);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
    for (let n = 0; n <= 200; n++) {
      const slice = data.subarray(0, n);
      const want = createHash("sha256").update(slice).digest("hex");
      for (const chunk of [1, 3, 63, 64, 65, 1000]) expect(hex(slice, chunk), `n=${n} chunk=${chunk}`).toBe(want);
    }
  });

  it("refuses to be fed after the digest", () => {
    const h = createSha256();
    h.digestHex();
    expect(() => h.update(enc("x"))).toThrow(/after digestHex/);
  });
});
