// A member's text as written: it parses to what JSON.parse gives for that member, spacing kept; an array's
// items as written, and where reading them stopped.
import { describe, expect, it } from "vitest";
import { rawItems, rawMember } from "../../../../api/src/inference/json-member.js";

describe("rawMember", () => {
  it("gives a member's text as written, whatever the value and the spacing", () => {
    const json = ' { "name" : "f", "arguments" : {"q": "a}\\"]{", "n": [1, {"x": null}]} , "after": -1.5e3 } ';
    expect(rawMember(json, "arguments")).toBe('{"q": "a}\\"]{", "n": [1, {"x": null}]}');
    expect(rawMember(json, "name")).toBe('"f"');
    expect(rawMember(json, "after")).toBe("-1.5e3");
    expect(rawMember(json, "missing")).toBeNull();
    expect(rawMember('{"a": 1, "a": [2]}', "a")).toBe("[2]"); // the last, as JSON.parse keeps
    expect(rawMember('{"k\\"ey": true}', 'k"ey')).toBe("true");
    expect(rawMember("{}", "a")).toBeNull();
  });

  it("agrees with JSON.parse on random objects", () => {
    let seed = 3;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
    const value = (depth: number): unknown => {
      const kind = rnd(depth > 2 ? 4 : 6);
      if (kind === 0) return rnd(1000) - 500;
      if (kind === 1) return ['a"b', "}{][", "\\", "é", ""][rnd(5)];
      if (kind === 2) return [true, false, null][rnd(3)];
      if (kind === 3) return 1.25;
      if (kind === 4) return Array.from({ length: rnd(3) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: rnd(3) }, (_, i) => [`k${i}`, value(depth + 1)]));
    };
    for (let n = 0; n < 300; n++) {
      const obj = { name: "f", arguments: value(0), z: value(1) };
      const json = JSON.stringify(obj, null, rnd(2) ? 1 : undefined);
      expect(JSON.parse(rawMember(json, "arguments")!)).toEqual(obj.arguments);
      expect(JSON.parse(rawMember(json, "z")!)).toEqual(obj.z);
    }
  });
});

describe("rawItems", () => {
  it("gives an array's items as written, the last possibly cut, and what follows where reading stopped", () => {
    expect(rawItems(' [{"a": "]"}, {"b": [1, 2]}] \n')).toEqual({ items: ['{"a": "]"}', '{"b": [1, 2]}'], after: "] \n" });
    expect(rawItems('[{"a": 1}, {"b": "x')).toEqual({ items: ['{"a": 1}', '{"b": "x'], after: "" });
    expect(rawItems('[{"a": 1}, ')).toEqual({ items: ['{"a": 1}'], after: "" });
    expect(rawItems('[{"a": 1} x')).toEqual({ items: ['{"a": 1}'], after: "x" });
    expect(rawItems('{"a": 1}')).toEqual({ items: [], after: '{"a": 1}' });
  });
});
