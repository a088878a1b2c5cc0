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

  it("bounds /blobs/ uploads and each tenant's training-file bytes by default, 0 lifting the file-bytes quota only", () => {
    const GiB = 1024 ** 3;
    expect(parseApiConfig({})).toMatchObject({ TUNESERVE_MAX_BLOB_BYTES: GiB, TUNESERVE_MAX_FILE_BYTES_PER_TENANT: 10 * GiB });
    // A checkpoint's optimizer state is twice its adapter: the default leaves room for the largest adapter's.
    expect(parseApiConfig({}).TUNESERVE_MAX_BLOB_BYTES).toBeGreaterThanOrEqual(2 * parseApiConfig({}).TUNESERVE_MAX_ADAPTER_BYTES);
    expect(parseApiConfig({ TUNESERVE_MAX_FILE_BYTES_PER_TENANT: "0" }).TUNESERVE_MAX_FILE_BYTES_PER_TENANT).toBe(0);
    expect(() => parseApiConfig({ TUNESERVE_MAX_BLOB_BYTES: "0" })).toThrow(/TUNESERVE_MAX_BLOB_BYTES/);
    expect(() => parseApiConfig({ TUNESERVE_MAX_FILE_BYTES_PER_TENANT: "-1" })).toThrow(/TUNESERVE_MAX_FILE_BYTES_PER_TENANT/);
  });

  it("refuses TUNESERVE_MAX_BLOB_BYTES under twice TUNESERVE_MAX_ADAPTER_BYTES: a checkpoint's optimizer state could not be stored", () => {
    const MiB = 1024 ** 2;
    expect(() => parseApiConfig({ TUNESERVE_MAX_ADAPTER_BYTES: String(600 * MiB) })).toThrow(
      `invalid setting TUNESERVE_MAX_BLOB_BYTES: ${1024 * MiB} is under twice TUNESERVE_MAX_ADAPTER_BYTES (${600 * MiB}); a checkpoint's optimizer.safetensors holds two float32 moments per adapter weight, so runners could not store it: set TUNESERVE_MAX_BLOB_BYTES to at least ${1200 * MiB} or lower TUNESERVE_MAX_ADAPTER_BYTES`,
    );
    expect(() => parseApiConfig({ TUNESERVE_MAX_BLOB_BYTES: String(400 * MiB) })).toThrow(/invalid setting TUNESERVE_MAX_BLOB_BYTES: .*TUNESERVE_MAX_ADAPTER_BYTES/);
    expect(parseApiConfig({ TUNESERVE_MAX_ADAPTER_BYTES: String(600 * MiB), TUNESERVE_MAX_BLOB_BYTES: String(1200 * MiB) }).TUNESERVE_MAX_BLOB_BYTES).toBe(1200 * MiB);
    expect(parseApiConfig({ TUNESERVE_MAX_ADAPTER_BYTES: String(64 * MiB), TUNESERVE_MAX_BLOB_BYTES: String(128 * MiB) }).TUNESERVE_MAX_ADAPTER_BYTES).toBe(64 * MiB);
  });
});
