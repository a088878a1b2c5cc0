// StopMatcher: split stop strings, hold-back of partial matches only, earliest match wins, flush.
import { describe, expect, it } from "vitest";
import { StopMatcher } from "../../../../gpu-runner/src/engine/generate/stop.js";

/** Feeds deltas, collecting released text until a stop; flushes at the end if nothing stopped. */
function run(stops: string[], deltas: string[]): { text: string; stopped: boolean; emits: string[] } {
  const m = new StopMatcher(stops);
  const emits: string[] = [];
  for (const d of deltas) {
    const r = m.push(d);
    emits.push(r.emit);
    if (r.stopped) return { text: emits.join(""), stopped: true, emits };
  }
  emits.push(m.flush());
  return { text: emits.join(""), stopped: false, emits };
}

/** The result a non-streaming implementation gives: cut at the earliest occurrence of any stop. */
function reference(stops: string[], full: string): { text: string; stopped: boolean } {
  const hits = stops.map((s) => full.indexOf(s)).filter((i) => i >= 0);
  return hits.length ? { text: full.slice(0, Math.min(...hits)), stopped: true } : { text: full, stopped: false };
}

describe("StopMatcher", () => {
  it("passes text through unchanged without stops", () => {
    expect(run([], ["Hello", " world"])).toEqual({ text: "Hello world", stopped: false, emits: ["Hello", " world", ""] });
  });

  it("releases text immediately when it cannot start a stop string", () => {
    const m = new StopMatcher(["END"]);
    expect(m.push("abc ")).toEqual({ emit: "abc ", stopped: false });
    expect(m.push("xyz")).toEqual({ emit: "xyz", stopped: false });
  });

  it("holds back only the possible beginning of a stop string", () => {
    const m = new StopMatcher(["END"]);
    expect(m.push("abc E")).toEqual({ emit: "abc ", stopped: false });
    expect(m.push("N")).toEqual({ emit: "", stopped: false });
    expect(m.push("x")).toEqual({ emit: "ENx", stopped: false });
  });

  it("finds a stop string split across many deltas and never emits it", () => {
    const r = run(["<|im_end|>"], ["Hi", " there<", "|im", "_", "end|", ">tail"]);
    expect(r).toMatchObject({ text: "Hi there", stopped: true });
    expect(r.emits.join("")).not.toContain("<|");
  });

  it("stops on a stop string inside a single delta and drops the rest", () => {
    expect(run(["\n\n"], ["one\n\ntwo"])).toMatchObject({ text: "one", stopped: true });
  });

  it("earliest match wins among several stops", () => {
    expect(run(["world", "lo"], ["Hello world"])).toMatchObject({ text: "Hel", stopped: true });
    // "abc" starts before "b" once both are present in one push.
    expect(run(["abc", "b"], ["xabc"])).toMatchObject({ text: "x", stopped: true });
    // Streaming: "b" completes while "abc" is still only a prefix, so it stops first.
    expect(run(["abc", "b"], ["xa", "b", "c"])).toMatchObject({ text: "xa", stopped: true });
  });

  it("handles self-overlapping stops (aab inside aaab)", () => {
    expect(run(["aab"], ["a", "a", "a", "b", "z"])).toMatchObject({ text: "a", stopped: true });
  });

  it("returns nothing after stopping and flush is empty", () => {
    const m = new StopMatcher(["x"]);
    expect(m.push("ax")).toEqual({ emit: "a", stopped: true });
    expect(m.stopped).toBe(true);
    expect(m.push("more")).toEqual({ emit: "", stopped: true });
    expect(m.flush()).toBe("");
  });

  it("flush releases a held partial match when generation ends", () => {
    const m = new StopMatcher(["STOP"]);
    expect(m.push("ok ST")).toEqual({ emit: "ok ", stopped: false });
    expect(m.flush()).toBe("ST");
  });

  it("stopHere ends at a stop string the text does not show, releasing the held tail before it", () => {
    const m = new StopMatcher(["STOP"]);
    expect(m.push("ok ST")).toEqual({ emit: "ok ", stopped: false });
    expect(m.stopHere()).toBe("ST");
    expect(m.stopped).toBe(true);
    expect(m.push("more")).toEqual({ emit: "", stopped: true });
    expect(m.stopHere()).toBe("");
  });

  it("handles emoji and CJK stop strings", () => {
    expect(run(["🛑"], ["go go ", "🛑 no"])).toMatchObject({ text: "go go ", stopped: true });
    expect(run(["结束"], ["你好", "结", "束了"])).toMatchObject({ text: "你好", stopped: true });
  });

  it("rejects empty stop strings", () => {
    expect(() => new StopMatcher(["ok", ""])).toThrow(/stop\[1\] is empty/);
  });

  it("agrees with cut-at-earliest-occurrence for every way of splitting the text", () => {
    const full = "the cat sat on the mat; STOP here ST";
    const stopsList = [["STOP"], ["mat", "cat"], ["on the m"], ["zzz"], ["; ", "STOP"]];
    for (const stops of stopsList) {
      const ref = reference(stops, full);
      // all splits into three pieces
      for (let i = 0; i <= full.length; i++) {
        for (let j = i; j <= full.length; j += 3) {
          const r = run(stops, [full.slice(0, i), full.slice(i, j), full.slice(j)]);
          expect({ text: r.text, stopped: r.stopped }, `${JSON.stringify(stops)} split ${i},${j}`).toEqual(ref);
        }
      }
      // one character at a time
      const r = run(stops, [...full]);
      expect({ text: r.text, stopped: r.stopped }).toEqual(ref);
    }
  });
});
