import { describe, expect, it } from "vitest";
import { parseApiConfig } from "../../../api/src/config.js";
import { limitsOf, monthOf } from "../../../api/src/quotas/limits.js";

const at = (y: number, m: number, d: number, h = 0) => Date.UTC(y, m - 1, d, h) / 1000;

describe("quota limits", () => {
  it("bounds the calendar month in UTC, across a year's end", () => {
    expect(monthOf(at(2026, 12, 31, 23))).toEqual({ key: "2026-12", end: at(2027, 1, 1) });
    expect(monthOf(at(2027, 2, 1))).toEqual({ key: "2027-02", end: at(2027, 3, 1) });
    expect(monthOf(at(2027, 2, 1) - 1)).toEqual({ key: "2027-01", end: at(2027, 2, 1) });
  });

  it("takes the tenant's own limits over the deployment's, and 0 monthly tokens or requests as unlimited", () => {
    const config = parseApiConfig({ TUNESERVE_MAX_ACTIVE_JOBS: "4", TUNESERVE_MONTHLY_TOKENS: "500", TUNESERVE_REQUESTS_PER_MINUTE: "60" });
    const none = { maxActiveJobs: null, maxAdapters: null, monthlyTokens: null, requestsPerMinute: null };
    expect(limitsOf(none, config)).toEqual({ max_active_jobs: 4, max_adapters: 1000, monthly_tokens: 500, requests_per_minute: 60 });
    expect(limitsOf({ maxActiveJobs: 0, maxAdapters: 3, monthlyTokens: 0, requestsPerMinute: 0 }, config)).toEqual({ max_active_jobs: 0, max_adapters: 3, monthly_tokens: 0, requests_per_minute: 0 });
    expect(limitsOf(none, parseApiConfig({}))).toMatchObject({ max_active_jobs: 10, monthly_tokens: 0, requests_per_minute: 0 });
  });
});
