// TUNESERVE_ORT_SPIN, read without loading onnxruntime (the runner's main thread needs it, not ORT).

/** TUNESERVE_ORT_SPIN: unset, 1/true/on → spin (the default); 0/false/off → never spin. */
export function spinSetting(value = process.env.TUNESERVE_ORT_SPIN): boolean {
  const v = (value ?? "").trim().toLowerCase();
  if (v === "" || v === "1" || v === "true" || v === "on") return true;
  if (v === "0" || v === "false" || v === "off") return false;
  throw new Error(`TUNESERVE_ORT_SPIN=${value}: use 1 (spin within runs, the default) or 0 (never spin)`);
}
