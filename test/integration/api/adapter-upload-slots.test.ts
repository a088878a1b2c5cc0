// TUNESERVE_MAX_ADAPTER_UPLOADS: adapter uploads are buffered whole, so a process receives only so many at once;
// another waits, its body unread, until one ends, and then is stored as usual.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../helpers/api.js";
import { microLlamaAdapterForm, registerMicroLlama } from "../../helpers/jobs.js";

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ TUNESERVE_MAX_ADAPTER_UPLOADS: "1" });
  await registerMicroLlama(api);
});
afterAll(() => api.close());

async function adapterForm() {
  const f = microLlamaAdapterForm();
  const res = new Response(f);
  return { bytes: new Uint8Array(await res.arrayBuffer()), type: res.headers.get("Content-Type")! };
}

/** A body that sends all but its last byte, then waits for finish(); `pulls` counts how often it was read. */
function heldBody(bytes: Uint8Array) {
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const state = { pulls: 0 };
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      state.pulls++;
      if (!sent) {
        sent = true;
        c.enqueue(bytes.subarray(0, bytes.length - 1));
        return;
      }
      await finished;
      c.enqueue(bytes.subarray(bytes.length - 1));
      c.close();
    },
  }, { highWaterMark: 0 });
  return { body, finish, state };
}

const settledWithin = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);

describe("TUNESERVE_MAX_ADAPTER_UPLOADS", () => {
  it("makes an upload past the limit wait, without reading its body, until the one in progress ends", async () => {
    const a = await api.tenant("a");
    const b = await api.tenant("b");
    const form = await adapterForm();
    const first = heldBody(form.bytes);
    const second = heldBody(form.bytes);
    const upload = (key: string, body: ReadableStream<Uint8Array>) => api.call("POST", "/v1/adapters", { token: key, body, headers: { "Content-Type": form.type } });
    const one = upload(a.key, first.body);
    await new Promise((r) => setTimeout(r, 100));
    const two = upload(b.key, second.body);
    expect(await settledWithin(two, 300)).toBe(false);
    expect(second.state.pulls).toBe(0);
    first.finish();
    second.finish();
    expect((await one).status).toBe(201);
    expect((await two).status).toBe(201);
    expect(second.state.pulls).toBeGreaterThan(0);
  });
});
