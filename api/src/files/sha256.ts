// Incremental SHA-256 (FIPS 180-4) in plain TypeScript: WebCrypto digests only whole buffers, and uploads
// are hashed chunk by chunk while they stream to the blob store, on Workers and Node alike.

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const INIT = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

export interface Sha256 {
  /** Feeds more bytes; may be called any number of times with chunks of any size. */
  update(bytes: Uint8Array): void;
  /** Finishes the hash and returns it as 64 lowercase hex characters; the hasher cannot be fed afterwards. */
  digestHex(): string;
}

/** Starts an incremental SHA-256 over a byte stream. */
export function createSha256(): Sha256 {
  const h = new Int32Array(INIT);
  const w = new Int32Array(64);
  const block = new Uint8Array(64);
  let blockLen = 0;
  let total = 0; // bytes fed so far; a JS number is exact up to 2^53, far beyond any upload
  let done = false;

  // One 64-byte block into the state.
  const compress = (buf: Uint8Array, off: number) => {
    for (let i = 0; i < 16; i++) {
      const j = off + i * 4;
      w[i] = (buf[j] << 24) | (buf[j + 1] << 16) | (buf[j + 2] << 8) | buf[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15];
      const b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  };

  return {
    update(bytes) {
      if (done) throw new Error("sha256: update() after digestHex(); start a new hasher");
      total += bytes.length;
      let i = 0;
      if (blockLen > 0) {
        const take = Math.min(64 - blockLen, bytes.length);
        block.set(bytes.subarray(0, take), blockLen);
        blockLen += take;
        i = take;
        if (blockLen < 64) return;
        compress(block, 0);
        blockLen = 0;
      }
      // Whole blocks straight from the input, without copying.
      for (; i + 64 <= bytes.length; i += 64) compress(bytes, i);
      if (i < bytes.length) {
        block.set(bytes.subarray(i), 0);
        blockLen = bytes.length - i;
      }
    },
    digestHex() {
      if (done) throw new Error("sha256: digestHex() called twice; start a new hasher");
      done = true;
      // Padding: 0x80, zeros to 56 mod 64, then the bit length as a 64-bit big-endian integer.
      block[blockLen++] = 0x80;
      if (blockLen > 56) {
        block.fill(0, blockLen);
        compress(block, 0);
        blockLen = 0;
      }
      block.fill(0, blockLen, 56);
      const bits = total * 8;
      const hi = Math.floor(bits / 0x100000000);
      const lo = bits >>> 0;
      block[56] = hi >>> 24; block[57] = hi >>> 16; block[58] = hi >>> 8; block[59] = hi;
      block[60] = lo >>> 24; block[61] = lo >>> 16; block[62] = lo >>> 8; block[63] = lo;
      compress(block, 0);
      let out = "";
      for (const x of h) out += (x >>> 0).toString(16).padStart(8, "0");
      return out;
    },
  };
}
