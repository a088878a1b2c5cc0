import { describe, expect, it } from "vitest";
import { parseApiConfig } from "../../../api/src/config.js";

describe("parseApiConfig", () => {
  it("refuses a runner token equal to the admin token: every runner machine would hold the admin API's key", () => {
    const token = "shared-token-0123456789";
    expect(() => parseApiConfig({ TUNESERVE_ADMIN_TOKEN: token, TUNESERVE_RUNNER_TOKEN: token })).toThrow(
      "invalid setting TUNESERVE_RUNNER_TOKEN: must differ from TUNESERVE_ADMIN_TOKEN (a runner token is kept on every runner machine; one equal to the admin token would open /admin to each)",
    );
    expect(parseApiConfig({ TUNESERVE_ADMIN_TOKEN: token, TUNESERVE_RUNNER_TOKEN: `${token}-runner` }).TUNESERVE_RUNNER_TOKEN).toBe(`${token}-runner`);
    expect(parseApiConfig({ TUNESERVE_RUNNER_TOKEN: token }).TUNESERVE_ADMIN_TOKEN).toBeUndefined();
  });
});
