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

  it("matches a stop string that holds a hidden token's text on the text with it in place, releasing none of it", () => {
    const m = new StopMatcher(["i<|e|>"], ["<|e|>", "<|s|>"]);
    expect(m.seesHidden).toBe(true);
    expect(m.push("Hi")).toEqual({ emit: "H", stopped: false });
    expect(m.wouldStopAt("<|s|>")).toBe(false);
    expect(m.wouldStopAt("<|e|>")).toBe(true);
    expect(m.push("<|e|>", true)).toEqual({ emit: "", stopped: true });
    // Starting at the hidden token: the text after it completes the match.
    const after = new StopMatcher(["<|e|> m"], ["<|e|>"]);
    expect(after.push("Hi")).toEqual({ emit: "Hi", stopped: false });
    expect(after.push("<|e|>", true)).toEqual({ emit: "", stopped: false });
    expect(after.push(" m")).toEqual({ emit: "", stopped: true });
    // Hidden text that no stop string can go on from is dropped, the text after it released ("<" may begin the
    // stop string spelled by text alone).
    const passed = new StopMatcher(["<|e|>!"], ["<|e|>"]);
    expect(passed.push("a")).toEqual({ emit: "a", stopped: false });
    expect(passed.push("<|e|>", true)).toEqual({ emit: "", stopped: false });
    expect(passed.push("b<")).toEqual({ emit: "b", stopped: false });
    expect(passed.flush()).toBe("<");
  });

  it("matches the other stop strings on the text alone, across hidden tokens", () => {
    // No stop string holds a hidden token's text: hidden text is not kept at all.
    const alone = new StopMatcher(["ab"], ["<|e|>"]);
    expect(alone.seesHidden).toBe(false);
    expect(alone.push("a")).toEqual({ emit: "", stopped: false });
    expect(alone.push("<|e|>", true)).toEqual({ emit: "", stopped: false });
    expect(alone.push("b")).toEqual({ emit: "", stopped: true });
    // Both kinds at once: "ab" still matches across the hidden token.
    const both = new StopMatcher(["ab", "x<|e|>"], ["<|e|>"]);
    expect(both.push("a")).toEqual({ emit: "", stopped: false });
    expect(both.push("<|e|>", true)).toEqual({ emit: "", stopped: false });
    expect(both.push("b")).toEqual({ emit: "", stopped: true });
  });

  it("agrees with cutting the whole text for every sequence of pieces and hidden tokens", () => {
    // Pieces of the answer's text and two hidden tokens; the reference cuts at the earliest match: a stop string
    // holding hidden text in the text with it, where its first character stands in the text without it.
    const pieces = [["a", false], ["b", false], ["<", false], ["|>", false], ["<|e|>", true], ["<|s|>", true]] as const;
    const hiddenTexts = ["<|e|>", "<|s|>"];
    const stopsList = [["b<|e|>"], ["<|e|>a"], ["<|e|><|s|>", "ab"], ["a<|e|>b", "b<"], ["<|e|>"], ["|><|s|>"]];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % pieces.length;
    for (let trial = 0; trial < 200; trial++) {
      const seq = Array.from({ length: 8 }, () => pieces[next()]);
      for (const stops of stopsList) {
        const withHidden = stops.filter((st) => hiddenTexts.some((h) => st.includes(h)));
        const plainStops = stops.filter((st) => !withHidden.includes(st));
        const plain = seq.filter(([, h]) => !h).map(([t]) => t).join("");
        const all = seq.map(([t]) => t).join("");
        const plainAt = (i: number) => seq.reduce((acc, [t, h], k) => {
          const start = seq.slice(0, k).reduce((n, [u]) => n + u.length, 0);
          return h ? acc : acc + Math.max(0, Math.min(t.length, i - start));
        }, 0);
        const cuts = [...plainStops.map((st) => plain.indexOf(st)), ...withHidden.map((st) => (all.indexOf(st) < 0 ? -1 : plainAt(all.indexOf(st))))].filter((i) => i >= 0);
        const want = cuts.length ? { text: plain.slice(0, Math.min(...cuts)), stopped: true } : { text: plain, stopped: false };
        const m = new StopMatcher(stops, hiddenTexts);
        let text = "";
        let stopped = false;
        for (const [t, h] of seq) {
          const r = m.push(t, h);
          text += r.emit;
          if ((stopped = r.stopped)) break;
        }
        if (!stopped) text += m.flush();
        expect({ text, stopped }, `${JSON.stringify(stops)} ${JSON.stringify(seq)}`).toEqual(want);
      }
    }
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
