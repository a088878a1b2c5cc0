// A streaming multipart/form-data parser on Web streams (Workers and Node): small fields are read as text and a
// file part is handed over as a ReadableStream, so an upload of any size passes through without being buffered.
import { ApiError } from "../errors.js";
import { joinBytes } from "../lib/join-bytes.js";

export interface MultipartPart {
  /** The form field name from Content-Disposition. */
  name: string;
  /** The client's file name (decoded, not yet sanitized), or null for a plain field. */
  filename: string | null;
  contentType: string | null;
  /** The part's bytes; read it to the end (or not at all: the parser skips what is left before the next part). */
  body: ReadableStream<Uint8Array>;
}

export interface MultipartOptions {
  /** Largest header block of one part (default 16 KiB). */
  maxHeaderBytes?: number;
  /** Most parts accepted in one body (default 16). */
  maxParts?: number;
}

const CRLF = new Uint8Array([13, 10]);
const encoder = new TextEncoder();

const malformed = (what: string) => new ApiError("invalid_request", `multipart body: ${what}`);

/** Extracts the boundary from a Content-Type header, refusing anything but multipart/form-data. */
export function multipartBoundary(contentType: string | undefined | null): string {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "multipart/form-data") {
    throw new ApiError(
      "unsupported_media_type",
      `expected Content-Type multipart/form-data with fields 'purpose' and 'file' (curl -F purpose=fine-tune -F file=@train.jsonl), got '${type || "none"}'`,
    );
  }
  const params = parseParams(contentType!.slice(contentType!.indexOf(";") + 1));
  const boundary = contentType!.includes(";") ? params.get("boundary") : undefined;
  if (!boundary || boundary.length > 70) throw malformed("the Content-Type header has no valid boundary parameter (1–70 characters)");
  return boundary;
}

/** Parses `; key=value; key="quoted \"value\""` parameter lists (Content-Type, Content-Disposition). */
export function parseParams(s: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < s.length) {
    while (i < s.length && (s[i] === ";" || s[i] === " " || s[i] === "\t")) i++;
    const eq = s.indexOf("=", i);
    if (eq === -1) break;
    const key = s.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    let value = "";
    if (s[i] === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        // Only \" and \\ are escapes: browsers send Windows paths with literal backslashes.
        if (s[i] === "\\" && (s[i + 1] === '"' || s[i + 1] === "\\")) i++;
        value += s[i++];
      }
      i++; // closing quote
    } else {
      const end = s.indexOf(";", i);
      value = s.slice(i, end === -1 ? s.length : end).trim();
      i = end === -1 ? s.length : end;
    }
    if (key && !out.has(key)) out.set(key, value);
  }
  return out;
}

/** The file name of a Content-Disposition: RFC 5987 `filename*` wins; plain `filename` undoes the HTML form escapes. */
function dispositionFilename(params: Map<string, string>): string | null {
  const star = params.get("filename*");
  if (star) {
    const m = /^utf-8'[^']*'(.*)$/i.exec(star);
    if (m) {
      try {
        return decodeURIComponent(m[1]);
      } catch {
        /* fall back to the plain parameter */
      }
    }
  }
  const plain = params.get("filename");
  if (plain === undefined) return null;
  // Browsers and undici escape exactly these three characters in multipart file names.
  return plain.replace(/%22/g, '"').replace(/%0D/gi, "\r").replace(/%0A/gi, "\n");
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0];
  const last = hay.length - needle.length;
  for (let i = hay.indexOf(first, from); i !== -1 && i <= last; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Yields the parts of a multipart/form-data body in order. Each part's body must be consumed (or abandoned)
 * before asking for the next part; malformed input throws ApiError invalid_request, from the iterator or from
 * the part's body stream, whichever is reading when the problem shows.
 */
export async function* parseMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  opts: MultipartOptions = {},
): AsyncGenerator<MultipartPart, void, undefined> {
  const maxHeaderBytes = opts.maxHeaderBytes ?? 16 * 1024;
  const maxParts = opts.maxParts ?? 16;
  // Every delimiter is CRLF "--" boundary; a virtual CRLF before the body lets the first one match too.
  const delimiter = encoder.encode(`\r\n--${boundary}`);
  const reader = body.getReader();
  let buf: Uint8Array = CRLF;
  let eof = false;

  const fill = async (): Promise<boolean> => {
    if (eof) return false;
    const { value, done } = await reader.read();
    if (done) {
      eof = true;
      return false;
    }
    buf = concat(buf, value);
    return true;
  };

  /** Next slice of the current part's body, or null at its closing delimiter (consumed). */
  const nextBodyBytes = async (partName: string): Promise<Uint8Array | null> => {
    for (;;) {
      const at = indexOfBytes(buf, delimiter);
      if (at === 0) {
        buf = buf.subarray(delimiter.length);
        return null;
      }
      if (at > 0) {
        const out = buf.subarray(0, at);
        buf = buf.subarray(at);
        return out;
      }
      // Hold back what could be the start of a delimiter split across chunks.
      const safe = buf.length - (delimiter.length - 1);
      if (safe > 0) {
        const out = buf.subarray(0, safe);
        buf = buf.subarray(safe);
        return out;
      }
      if (!(await fill())) throw malformed(`the body ended inside part '${partName}' before its closing boundary`);
    }
  };

  try {
    // Preamble: skip what comes before the first delimiter. Clients send none, so one longer than a part's
    // headers may be is refused: otherwise a body without the boundary would be read to its end, however long.
    for (;;) {
      const at = indexOfBytes(buf, delimiter);
      if (at !== -1) {
        buf = buf.subarray(at + delimiter.length);
        break;
      }
      if (buf.length > maxHeaderBytes + delimiter.length) throw malformed(`more than ${maxHeaderBytes} bytes before the first boundary '${boundary}'; is the body really multipart/form-data with that boundary?`);
      if (!(await fill())) throw malformed(`no boundary '${boundary}' found; is the body really multipart/form-data?`);
    }
    for (let index = 0; ; index++) {
      // After a delimiter: "--" closes the body; else optional spaces, then CRLF and the part's headers.
      while (buf.length < 2) if (!(await fill())) throw malformed("the body ended right after a boundary; the closing '--' is missing");
      if (buf[0] === 45 && buf[1] === 45) return;
      let p = 0;
      for (;;) {
        while (p < buf.length && (buf[p] === 32 || buf[p] === 9)) p++;
        if (p + 2 <= buf.length) break;
        if (!(await fill())) throw malformed("the body ended right after a boundary");
      }
      if (buf[p] !== 13 || buf[p + 1] !== 10) throw malformed("a boundary line must end with CRLF");
      buf = buf.subarray(p + 2);
      if (index >= maxParts) throw malformed(`more than ${maxParts} parts; send only the form's fields`);

      let headerEnd: number;
      for (;;) {
        headerEnd = buf[0] === 13 && buf[1] === 10 ? -2 : indexOfBytes(buf, encoder.encode("\r\n\r\n"));
        if (headerEnd !== -1) break;
        if (buf.length > maxHeaderBytes) throw malformed(`headers of part ${index + 1} exceed ${maxHeaderBytes} bytes`);
        if (!(await fill())) throw malformed(`the body ended inside the headers of part ${index + 1}`);
      }
      const headerText = headerEnd === -2 ? "" : new TextDecoder().decode(buf.subarray(0, headerEnd));
      buf = buf.subarray(headerEnd === -2 ? 2 : headerEnd + 4);
      const part = parseHeaders(headerText, index);

      let finished = false;
      let failed: unknown = null;
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const bytes = await nextBodyBytes(part.name);
            if (bytes === null) {
              finished = true;
              controller.close();
            } else controller.enqueue(bytes);
          } catch (e) {
            failed = e;
            controller.error(e);
          }
        },
      }, { highWaterMark: 0 });
      yield { ...part, body: stream };
      if (failed) throw failed;
      // The consumer stopped early (or never read): skip the rest of this part.
      while (!finished) if ((await nextBodyBytes(part.name)) === null) finished = true;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function parseHeaders(text: string, index: number): Omit<MultipartPart, "body"> {
  let disposition: string | null = null;
  let contentType: string | null = null;
  for (const line of text ? text.split("\r\n") : []) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed(`part ${index + 1} has a malformed header line '${line.slice(0, 80)}'`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-disposition") disposition = value;
    else if (name === "content-type") contentType = value;
  }
  if (!disposition || !/^form-data\s*(;|$)/i.test(disposition)) {
    throw malformed(`part ${index + 1} needs a 'Content-Disposition: form-data; name="…"' header`);
  }
  const params = parseParams(disposition.slice(disposition.indexOf(";") + 1));
  const name = disposition.includes(";") ? params.get("name") : undefined;
  if (!name) throw malformed(`part ${index + 1} has no field name in its Content-Disposition`);
  return { name, filename: dispositionFilename(params), contentType };
}

/**
 * Reads a small part whole, refusing one longer than `maxBytes` with `tooLong(n)`: as soon as it passes the
 * limit, or with `readOn`, once it has been read to its end, so that `n` says how long it is.
 */
export async function readPartBytes(part: Pick<MultipartPart, "body">, maxBytes: number, tooLong: (n: number) => Error, readOn = false): Promise<Uint8Array> {
  const reader = part.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > maxBytes && !readOn) {
      await reader.cancel();
      throw tooLong(n);
    }
    if (n <= maxBytes) chunks.push(value);
  }
  if (n > maxBytes) throw tooLong(n);
  return joinBytes(chunks);
}

/**
 * The error for a form field a route does not take, named as the JSON routes name an unknown key: ignored, a
 * misspelt optional field (an adapter's `sufix`) would silently upload without it. `fields` lists the form's own.
 */
export function notAFormField(name: string, fields: readonly string[]): ApiError {
  return new ApiError("invalid_request", `${name}: not a field of this form (${fields.join(", ")}): check its name, or leave it out`, name);
}

/** Reads a small text field whole, refusing one longer than `maxBytes`. */
export async function readTextPart(part: MultipartPart, maxBytes: number): Promise<string> {
  const tooLong = () => new ApiError("invalid_request", `${part.name}: the field is longer than ${maxBytes} bytes`, part.name);
  return new TextDecoder().decode(await readPartBytes(part, maxBytes, tooLong));
}
