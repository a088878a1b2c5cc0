import { describe, expect, it } from "vitest";
import { badTimeMessage, parseGroupBy, parseTime } from "../../../../api/src/usage/query.js";

describe("usage query parsing", () => {
  it("reads unix seconds and ISO dates", () => {
    expect(parseTime("1735689600")).toBe(1735689600);
    expect(parseTime("2025-01-01")).toBe(1735689600);
    expect(parseTime("2025-01-01T01:00:00Z")).toBe(1735693200);
    expect(parseTime("2024-02-29T10:30+02:00")).toBe(1709195400);
    for (const bad of ["yesterday", "", "2025-13-45", "-5"]) expect(parseTime(bad), bad).toBeNull();
    // Date.parse would take these as other days: March 2, and June 1.
    for (const bad of ["2025-02-30", "2025-01-01junk", "2025-01-01T10:00Zjunk"]) expect(parseTime(bad), bad).toBeNull();
  });

  it("names a time it cannot read, and the unescaped '+' of an offset, which a URL's query reads as a space", () => {
    expect(badTimeMessage("start", "yesterday")).toBe("start=yesterday is neither unix seconds nor an ISO date like 2025-01-31");
    expect(badTimeMessage("end", "2024-02-29T10:30 02:00")).toBe(
      "end=2024-02-29T10:30 02:00 is neither unix seconds nor an ISO date like 2025-01-31: a '+' in a URL's query arrives as a space; write the offset as %2B02:00",
    );
    // A space before a time that still does not parse gets no hint.
    expect(badTimeMessage("end", "2025-13-45T10:30 02:00")).toBe("end=2025-13-45T10:30 02:00 is neither unix seconds nor an ISO date like 2025-01-31");
  });

  it("reads group_by lists and names an unknown entry", () => {
    expect(parseGroupBy("day,kind")).toEqual({ ok: true, groups: ["day", "kind"] });
    expect(parseGroupBy(" model , day,model")).toEqual({ ok: true, groups: ["model", "day"] });
    expect(parseGroupBy("")).toEqual({ ok: true, groups: [] });
    expect(parseGroupBy("day,week")).toEqual({ ok: false, bad: "week" });
  });
});
