// Validates fine-tuning JSONL while it streams: splits byte chunks into lines, parses each as JSON and checks it
// against the accepted shapes (line-shapes.ts), all lines of one file sharing one shape.
import { detectFormat, lineSchemas, loneSurrogateAt, NO_FORMAT, RECORD_EXAMPLES, uploadRules, type FileFormat } from "./line-shapes.js";
import { issueLine } from "../lib/zod-issue.js";

export { fileFormats, type FileFormat } from "./line-shapes.js";

/** One rejected line; `line` is the 1-based physical line number in the file, `message` says what to fix. */
export interface LineError {
  line: number;
  message: string;
}

export interface JsonlSummary {
  /** The shape of every line, or null when the file held no record. */
  format: FileFormat | null;
  /** Records (non-blank lines) seen. */
  lines: number;
  bytes: number;
  /** The first `maxErrors` problems, in file order. */
  errors: LineError[];
  /** All problems found, including those beyond `maxErrors`. */
  errorCount: number;
}

export interface JsonlOptions {
  maxLineBytes: number;
  /** How many errors to keep for the report (default 5). */
  maxErrors?: number;
}

/**
 * Line-by-line validator fed with raw byte chunks. Lines end at \n (a trailing \r is dropped); the last line
 * needs no newline. Blank (whitespace-only) lines are skipped and not counted as records, but they keep their
 * place in the numbering so reported line numbers match an editor's. A line longer than maxLineBytes is
 * reported without being buffered.
 */
export class JsonlValidator {
  private readonly maxLineBytes: number;
  private readonly maxErrors: number;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Set while skipping the rest of a line already reported as too long. */
  private overlong = false;
  private lineNo = 0;
  private firstFormatLine = 0;
  readonly summary: JsonlSummary = { format: null, lines: 0, bytes: 0, errors: [], errorCount: 0 };
  private finished = false;

  constructor(opts: JsonlOptions) {
    this.maxLineBytes = opts.maxLineBytes;
    this.maxErrors = opts.maxErrors ?? 5;
  }

  /** True once as many errors as the report keeps have been found: the caller may stop early. */
  get full(): boolean {
    return this.summary.errorCount >= this.maxErrors;
  }

  /** Feeds the next chunk of the file. */
  push(chunk: Uint8Array): void {
    if (this.finished) throw new Error("JsonlValidator: push() after finish()");
    this.summary.bytes += chunk.length;
    let start = 0;
    // 0x0A never occurs inside a multi-byte UTF-8 sequence, so splitting bytes at it is UTF-8 safe.
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      this.append(chunk.subarray(start, nl));
      this.endLine();
      start = nl + 1;
    }
    if (start < chunk.length) this.append(chunk.subarray(start));
  }

  /** Ends the file (a last line without newline counts) and returns the summary. */
  finish(): JsonlSummary {
    if (!this.finished) {
      this.finished = true;
      if (this.pendingBytes > 0 || this.overlong) this.endLine();
      if (this.summary.lines === 0 && this.summary.errorCount === 0) {
        this.error(Math.max(this.lineNo, 1), "the file has no records; send one JSON object per line");
      }
    }
    return this.summary;
  }

  private append(bytes: Uint8Array): void {
    if (this.overlong || bytes.length === 0) return;
    if (this.pendingBytes + bytes.length > this.maxLineBytes) {
      this.overlong = true;
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    // Copy: the caller may reuse the chunk's buffer after push() returns.
    this.pending.push(bytes.slice());
    this.pendingBytes += bytes.length;
  }

  private endLine(): void {
    this.lineNo++;
    if (this.overlong) {
      this.overlong = false;
      this.error(this.lineNo, `longer than ${this.maxLineBytes} bytes (TUNESERVE_MAX_LINE_BYTES); split or shorten the record`);
      return;
    }
    const bytes = this.takeLine();
    let text: string;
    try {
      text = this.decoder.decode(bytes);
    } catch {
      this.error(this.lineNo, "is not valid UTF-8; save the file as UTF-8");
      return;
    }
    if (this.lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte-order mark
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (text.trim() === "") return;
    this.checkRecord(text);
  }

  private takeLine(): Uint8Array {
    const parts = this.pending;
    this.pending = [];
    const n = this.pendingBytes;
    this.pendingBytes = 0;
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(n);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  private checkRecord(text: string): void {
    const line = this.lineNo;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      this.error(line, `is not valid JSON (${(e as Error).message})`);
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.error(line, `must be a JSON object such as ${RECORD_EXAMPLES}`);
      return;
    }
    const format = detectFormat(value as Record<string, unknown>);
    if (!format) {
      this.error(line, NO_FORMAT);
      return;
    }
    const r = lineSchemas[format].safeParse(value);
    if (!r.success) {
      this.error(line, `${format} record: ${issueLine(r.error.issues[0], "record")}`);
      return;
    }
    const broken = loneSurrogateAt(value);
    const problem = broken !== null ? `${broken}: holds half of a UTF-16 surrogate pair alone (a \\ud800–\\udfff escape without its other half); fix the text, e.g. where an emoji was cut` : (uploadRules[format]?.(r.data) ?? null);
    if (problem) {
      this.error(line, `${format} record: ${problem}`);
      return;
    }
    const s = this.summary;
    if (s.format === null) {
      s.format = format;
      this.firstFormatLine = line;
    } else if (s.format !== format) {
      this.error(line, `is a ${format} record but line ${this.firstFormatLine} is ${s.format}; all lines of a file must have the same format`);
      return;
    }
    s.lines++;
  }

  private error(line: number, message: string): void {
    const s = this.summary;
    s.errorCount++;
    if (s.errors.length < this.maxErrors) s.errors.push({ line, message });
  }
}
