// A model whose graph runs a built graph many times inside one ONNX Loop node, so that many steps cost one
// session.run. onnxruntime-node pays per run: every input is converted and every output copied, and the intra-op
// threads, which stop spinning when a run ends, must be woken at the next one.
// The body reads every input it does not carry (weights, caches, adapters) from the outer graph by name, as
// ONNX scoping allows: nothing is copied per iteration. Its initializers move to the outer graph.
import onnxProto from "onnx-proto";
import type { Graph, Tensor } from "./graph.js";
import { graphProto, modelBytes, valueInfo } from "./onnx.js";

const { onnx } = onnxProto;

/**
 * Which of the body's inputs and outputs the Loop uses. `iteration` (int64 []) and `condition` (bool []) are
 * inputs; `continues` is the bool output that ends the loop when false. Each `carried` pair is an input and the
 * output that feeds it in the next iteration. `scanned` outputs are stacked over the iterations.
 */
export type LoopSpec = { iteration: string; condition: string; continues: string; carried: [input: string, output: string][]; scanned: string[] };

/** The outer graph's names: the trip count and first condition it is fed, and its outputs. */
export const loopNames = {
  tripCount: "loop.trip_count",
  condition: "loop.condition",
  initial: (input: string) => `initial.${input}`,
  final: (output: string) => `final.${output}`,
  scan: (output: string) => `scan.${output}`,
};

/**
 * Serializes `body` as the body of one Loop. The outer graph's inputs: `loop.trip_count` (int64 []),
 * `loop.condition` (bool []), `initial.<input>` for each carried input, and the body's other inputs under their
 * own names. Its outputs: `final.<output>` for each carried output, `scan.<output>` ([steps, …]) for each scanned one.
 */
export function toOnnxLoop(body: Graph, spec: LoopSpec): Uint8Array {
  const input = (name: string) => find(body.inputs, name, body, "input");
  const output = (name: string) => find(body.outputs, name, body, "output");
  const carriedIn = spec.carried.map(([i]) => input(i));
  const carriedOut = spec.carried.map(([, o]) => output(o));
  const scanned = spec.scanned.map(output);
  const own = new Set([spec.iteration, spec.condition, ...spec.carried.map(([i]) => i)]);
  const inner = graphProto(body);
  const bodyGraph = {
    ...inner,
    initializer: [],
    input: [input(spec.iteration), input(spec.condition), ...carriedIn].map(valueInfo),
    output: [output(spec.continues), ...carriedOut, ...scanned].map(valueInfo),
  };
  const outer = {
    name: `${body.name}_loop`,
    node: [
      {
        name: "loop",
        opType: "Loop",
        input: [loopNames.tripCount, loopNames.condition, ...carriedIn.map((t) => loopNames.initial(t.name))],
        output: [...carriedOut.map((t) => loopNames.final(t.name)), ...scanned.map((t) => loopNames.scan(t.name))],
        attribute: [{ name: "body", type: onnx.AttributeProto.AttributeType.GRAPH, g: bodyGraph }],
      },
    ],
    initializer: inner.initializer,
    input: [
      valueInfo({ name: loopNames.tripCount, dtype: "int64", shape: [] }),
      valueInfo({ name: loopNames.condition, dtype: "bool", shape: [] }),
      ...carriedIn.map((t) => valueInfo({ ...t, name: loopNames.initial(t.name) })),
      ...body.inputs.filter((t) => !own.has(t.name)).map(valueInfo),
    ],
    output: [
      ...carriedOut.map((t) => valueInfo({ ...t, name: loopNames.final(t.name) })),
      ...scanned.map((t) => valueInfo({ dtype: t.dtype, name: loopNames.scan(t.name), shape: ["loop_steps", ...t.shape] })),
    ],
  };
  return modelBytes(outer, body);
}

function find(list: Tensor[], name: string, g: Graph, what: string): Tensor {
  const t = list.find((x) => x.name === name);
  if (!t) throw new Error(`loop over graph ${g.name}: it has no ${what} "${name}"`);
  return t;
}
