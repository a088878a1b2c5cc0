import { describe, expect, it } from "vitest";
import { ApiError } from "../../../../api/src/errors.js";
import { multipartBoundary, parseMultipart, readTextPart, type MultipartPart } from "../../../../api/src/files/multipart.js";

const enc = (s: string) => new TextEncoder().encode(s);

/** A stream that delivers `bytes` in chunks of `size`. */
function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i >= bytes.length) return c.close();
      c.enqueue(bytes.slice(i, i + size));
      i += size;
    },
  });
}

/** Serializes a FormData the way fetch does (undici), returning the body bytes and boundary. */
async function encodeForm(form: FormData) {
  const res = new Response(form);
  return { bytes: new Uint8Array(await res.arrayBuffer()), boundary: multipartBoundary(res.headers.get("Content-Type")) };
}

interface Collected {
  name: string;
  filename: string | null;
  contentType: string | null;
  text: string;
}

async function collect(body: ReadableStream<Uint8Array>, boundary: string): Promise<Collected[]> {
  const out: Collected[] = [];
  for await (const p of parseMultipart(body, boundary)) {
    out.push({ name: p.name, filename: p.filename, contentType: p.contentType, text: await new Response(p.body).text() });
  }
  return out;
}

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

const raw = (boundary: string, ...lines: string[]) => enc(lines.join("\r\n").replaceAll("{b}", boundary));

describe("multipartBoundary", () => {
  it("reads plain and quoted boundaries", () => {
    expect(multipartBoundary("multipart/form-data; boundary=abc")).toBe("abc");
    expect(multipartBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b;c"')).toBe("a b;c");
  });
  it("refuses other media types (415) and a missing boundary (400)", () => {
    expect(() => multipartBoundary("application/json")).toThrow(expect.objectContaining({ code: "unsupported_media_type" }));
    expect(() => multipartBoundary(undefined)).toThrow(/got 'none'/);
    expect(() => multipartBoundary("multipart/form-data")).toThrow(expect.objectContaining({ code: "invalid_request" }));
  });
});

describe("parseMultipart", () => {
  it("yields fields and files identically for every chunk size, including boundaries split across chunks", async () => {
    const form = new FormData();
    form.append("purpose", "fine-tune");
    // Content full of near-boundary bytes: CRLFs, dashes, and the boundary prefix itself.
    const content = '{"text":"a"}\r\n--\r\n-\r\n--formdata-\r\n{"text":"ü🤖"}\n'.repeat(20);
    form.append("file", new Blob([content], { type: "application/jsonl" }), 'my "train".jsonl');
    form.append("note", "");
    const { bytes, boundary } = await encodeForm(form);
    const want = [
      { name: "purpose", filename: null, contentType: null, text: "fine-tune" },
      { name: "file", filename: 'my "train".jsonl', contentType: "application/jsonl", text: content },
      { name: "note", filename: null, contentType: null, text: "" },
    ];
    for (const size of [1, 2, 3, 5, 13, boundary.length + 3, bytes.length]) {
      expect(await collect(chunked(bytes, size), boundary), `chunk size ${size}`).toEqual(want);
    }
  });

  it("skips a preamble and an epilogue, decodes backslash-quoted and RFC 5987 file names", async () => {
    const body = raw(
      "XyZ",
      "this is a preamble",
      "--{b}",
      'Content-Disposition: form-data; name="file"; filename="a\\"b.jsonl"',
      "",
      "line1",
      "--{b}  ",
      "Content-Disposition: form-data; name=\"f2\"; filename=\"x\"; filename*=UTF-8''na%C3%AFve.txt",
      "",
      "two",
      "--{b}--",
      "epilogue",
    );
    const parts = await collect(chunked(body, 4), "XyZ");
    expect(parts.map((p) => [p.name, p.filename, p.text])).toEqual([
      ["file", 'a"b.jsonl', "line1"],
      ["f2", "naïve.txt", "two"],
    ]);
  });

  it("stops reading a body whose preamble runs past the header limit, rather than consuming it to the end", async () => {
    let pulls = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        if (++pulls > 64) return c.close();
        c.enqueue(new Uint8Array(64 * 1024).fill(0x61));
      },
    });
    const err = await rejection(collect(endless, "XyZ"));
    expect(err.message).toMatch(/before the first boundary/);
    expect(pulls).toBeLessThanOrEqual(2);
  });

  it("skips whatever of a part the consumer did not read", async () => {
    const form = new FormData();
    form.append("file", new Blob(["x".repeat(100_000)]), "big.jsonl");
    form.append("purpose", "fine-tune");
    const { bytes, boundary } = await encodeForm(form);
    const names: string[] = [];
    for await (const p of parseMultipart(chunked(bytes, 1000), boundary)) {
      names.push(p.name);
      if (p.name === "file") {
        const r = p.body.getReader();
        await r.read();
        await r.cancel();
      } else expect(await readTextPart(p, 100)).toBe("fine-tune");
    }
    expect(names).toEqual(["file", "purpose"]);
  });

  it("rejects malformed bodies with a clear invalid_request", async () => {
    const b = "BND";
    const cases: [Uint8Array, RegExp][] = [
      [enc("no boundary at all"), /no boundary 'BND' found/],
      [raw(b, "--{b}", 'Content-Disposition: form-data; name="a"', "", "value without end"), /ended inside part 'a' before its closing boundary/],
      [raw(b, "--{b}", 'Content-Disposition: form-data; name="a"'), /ended inside the headers of part 1/],
      [raw(b, "--{b}", "Content-Type: text/plain", "", "v", "--{b}--"), /part 1 needs a 'Content-Disposition: form-data/],
      [raw(b, "--{b}", "Content-Disposition: form-data; filename=\"x\"", "", "v", "--{b}--"), /part 1 has no field name/],
      [raw(b, "--{b}", "garbage header", "", "v", "--{b}--"), /malformed header line 'garbage header'/],
      [raw(b, "--{b}", 'Content-Disposition: form-data; name="a"', "", "v", "--{b}xx"), /must end with CRLF/],
      [raw(b, "--{b}", 'Content-Disposition: form-data; name="a"', "", "v", "--{b}"), /closing '--' is missing/],
    ];
    for (const [body, msg] of cases) {
      const err = await rejection(collect(chunked(body, 3), b));
      expect(err.code).toBe("invalid_request");
      expect(err.message).toMatch(msg);
    }
  });

  it("limits header size, part count and text field length", async () => {
    const b = "B";
    const bigHeader = raw(b, "--{b}", `Content-Disposition: form-data; name="a"; x="${"y".repeat(20_000)}"`, "", "v", "--{b}--");
    expect((await rejection(collect(chunked(bigHeader, 1000), b))).message).toMatch(/headers of part 1 exceed 16384 bytes/);
    const many = raw(b, ...Array.from({ length: 17 }, (_, i) => `--{b}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv`), "--{b}--");
    expect((await rejection(collect(chunked(many, 64), b))).message).toMatch(/more than 16 parts/);
    const long = raw(b, "--{b}", 'Content-Disposition: form-data; name="purpose"', "", "z".repeat(200), "--{b}--");
    const err = await rejection(
      (async () => {
        for await (const p of parseMultipart(chunked(long, 7), b)) await readTextPart(p as MultipartPart, 64);
      })(),
    );
    expect(err).toMatchObject({ code: "invalid_request", param: "purpose" });
    expect(err.message).toBe("purpose: the field is longer than 64 bytes");
  });

  it("parses an empty form (only the closing delimiter)", async () => {
    expect(await collect(chunked(raw("B", "--{b}--", ""), 2), "B")).toEqual([]);
  });
});
