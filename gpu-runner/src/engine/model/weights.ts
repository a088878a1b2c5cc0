// Where a model's frozen weights come from when a graph is built: F32 tensors become external
// initializers pointing into the safetensors bytes (no protobuf copy); converted or overridden
// tensors (F16/BF16, float64 graphs, merged LoRA) are packed into one side buffer.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Graph, Tensor } from "../graph/index.js";
import { readSafetensors, type SafetensorsFile } from "../weights/safetensors.js";

export class WeightStore {
  private readonly byName = new Map<string, { file: SafetensorsFile; location: string }>();
  private readonly overrides = new Map<string, { data: Float32Array; shape: number[] }>();
  private sideChunks: Uint8Array[] = [];
  private sideLength = 0;

  constructor(readonly files: SafetensorsFile[]) {
    files.forEach((file, i) => {
      for (const name of file.names()) {
        if (this.byName.has(name)) throw new Error(`${file.path}: tensor "${name}" also appears in another shard`);
        this.byName.set(name, { file, location: `weights${i}.safetensors` });
      }
    });
  }

  has(name: string): boolean {
    return this.overrides.has(name) || this.byName.has(name);
  }

  shape(name: string): number[] {
    const o = this.overrides.get(name);
    if (o) return o.shape;
    return this.entry(name).file.shape(name);
  }

  /** The tensor's values as float32 (a copy). */
  read(name: string): Float32Array {
    const o = this.overrides.get(name);
    return o ? o.data.slice() : this.entry(name).file.tensor(name);
  }

  /** Replaces a tensor's values for graphs built from now on (used for merged adapters). */
  override(name: string, data: Float32Array): void {
    this.overrides.set(name, { data, shape: this.shape(name) });
  }

  private entry(name: string) {
    const e = this.byName.get(name);
    if (!e) throw new Error(`model weights: no tensor named "${name}" in ${this.files.map((f) => f.path).join(", ")}`);
    return e;
  }

  /** A lookup that adds each named weight to graph g once (a weight used twice stays one initializer). */
  graphLookup(g: Graph, dtype: "float32" | "float64"): (name: string) => Tensor {
    const added = new Map<string, Tensor>();
    return (name) => {
      let t = added.get(name);
      if (!t) added.set(name, (t = this.toGraph(g, name, dtype)));
      return t;
    };
  }

  /** Adds `name` to graph g as an initializer of `dtype`, without copying when the bytes are usable as-is. */
  toGraph(g: Graph, name: string, dtype: "float32" | "float64"): Tensor {
    const shape = this.shape(name);
    const e = this.overrides.has(name) ? undefined : this.entry(name);
    if (e && dtype === "float32" && e.file.dtype(name) === "F32") {
      const [start, end] = e.file.byteRange(name);
      return g.external(name, "float32", shape, e.location, start, end - start);
    }
    const f32 = this.read(name);
    const data = dtype === "float64" ? Float64Array.from(f32) : f32;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const offset = this.sideLength;
    this.sideChunks.push(bytes);
    const padded = Math.ceil(bytes.byteLength / 64) * 64;
    if (padded > bytes.byteLength) this.sideChunks.push(new Uint8Array(padded - bytes.byteLength));
    this.sideLength += padded;
    return g.external(name, dtype, shape, "converted.bin", offset, bytes.byteLength);
  }

  /** The buffers the session needs for the graph just built; resets the side buffer for the next graph. */
  takeExternalData(): { path: string; data: Uint8Array }[] {
    const out = this.files.map((f, i) => ({ path: `weights${i}.safetensors`, data: f.bytes }));
    if (this.sideLength > 0) {
      const side = new Uint8Array(this.sideLength);
      let pos = 0;
      for (const c of this.sideChunks) {
        side.set(c, pos);
        pos += c.byteLength;
      }
      out.push({ path: "converted.bin", data: side });
    }
    this.sideChunks = [];
    this.sideLength = 0;
    return out;
  }
}

/** Opens every *.safetensors file in a model folder. */
export async function openWeights(dir: string): Promise<WeightStore> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".safetensors")).sort();
  if (names.length === 0) throw new Error(`${dir}: no *.safetensors file; a model folder needs its weights in safetensors format`);
  return new WeightStore(await Promise.all(names.map((n) => readSafetensors(join(dir, n)))));
}
