// Reads a safetensors file as it streams past: the header from its first bytes (held only until it is
// decoded, and only up to a bound), the tensor data only counted, so a file of any size is checked in the
// memory of its header.
import { joinBytes } from "../lib/join-bytes.js";
import { checkDataSection, decodeSafetensorsHeader, headerPastEnd, maxHeaderBytes, tooShort, type SafetensorsHeader } from "./safetensors-header.js";

export class SafetensorsStreamReader {
  /** Bytes seen so far. */
  bytes = 0;
  /** The header length the file declares, once its first 8 bytes have come. */
  declared: number | null = null;
  /** The most bytes held at once (the length prefix and the header while they arrive), for tests to bound. */
  mostHeld = 0;
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private header: SafetensorsHeader | null = null;

  /** `maxHeaderBytes`: a longer declared header is not held; the rest of the file is only counted. */
  constructor(
    private readonly file: string,
    private readonly maxHeaderBytes: number,
  ) {}

  /** Whether the declared header is longer than the bound (the caller names that fault once the file's length is known). */
  get oversized(): boolean {
    return this.declared !== null && this.declared > this.maxHeaderBytes;
  }

  /**
   * Feeds the next bytes. Returns the decoded header the one time it completes (the rest is data), else null;
   * throws SafetensorsError for a header that does not decode.
   */
  push(chunk: Uint8Array): SafetensorsHeader | null {
    this.bytes += chunk.length;
    if (this.header || this.oversized) return null;
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    this.mostHeld = Math.max(this.mostHeld, this.heldBytes);
    if (this.declared === null) {
      if (this.heldBytes < 8) return null;
      const prefix = this.joined();
      this.declared = Number(new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true));
      if (this.oversized) {
        this.release();
        return null;
      }
    }
    const end = 8 + this.declared;
    if (this.heldBytes < end) return null;
    const prefix = this.joined();
    this.release();
    this.header = decodeSafetensorsHeader(prefix.subarray(8, end), this.file);
    return this.header;
  }

  /** The file has ended: checks its length against the header and returns the header; throws SafetensorsError. */
  end(): SafetensorsHeader {
    if (this.declared === null) throw tooShort(this.file, this.bytes);
    if (!this.header) throw headerPastEnd(this.file, this.declared, this.bytes);
    checkDataSection(this.header, this.bytes - this.header.dataStart, this.file);
    return this.header;
  }

  /** The held chunks as one array (kept as one, so joining again copies nothing). */
  private joined(): Uint8Array {
    this.held = [joinBytes(this.held)];
    return this.held[0];
  }

  private release(): void {
    this.held = [];
    this.heldBytes = 0;
  }
}

/**
 * Parses the header of `bytes` (a whole safetensors file), as the stream of it is read: every tensor has a
 * supported dtype, a byte range that matches shape × dtype size, and the ranges tile the data section exactly.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, file = "model.safetensors"): SafetensorsHeader {
  const reader = new SafetensorsStreamReader(file, maxHeaderBytes);
  reader.push(bytes);
  return reader.end();
}
