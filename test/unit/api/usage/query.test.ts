import { describe, expect, it } from "vitest";
import { parseGroupBy, parseTime } from "../../../../api/src/usage/query.js";

describe("usage query parsing", () => {
  it("reads unix seconds and ISO dates", () => {
    expect(parseTime("1735689600")).toBe(1735689600);
    expect(parseTime("2025-01-01")).toBe(1735689600);
    expect(parseTime("2025-01-01T01:00:00Z")).toBe(1735693200);
    for (const bad of ["yesterday", "", "2025-13-45", "-5"]) expect(parseTime(bad), bad).toBeNull();
  });

  it("reads group_by lists and names an unknown entry", () => {
    expect(parseGroupBy("day,kind")).toEqual({ ok: true, groups: ["day", "kind"] });
    expect(parseGroupBy(" model , day,model")).toEqual({ ok: true, groups: ["model", "day"] });
    expect(parseGroupBy("")).toEqual({ ok: true, groups: [] });
    expect(parseGroupBy("day,week")).toEqual({ ok: false, bad: "week" });
  });
});
