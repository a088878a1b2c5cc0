// Price lookup: a base model's own price, then the kind's default; fine-tuned models priced as their base.
import { describe, expect, it } from "vitest";
import { baseOf, PriceList } from "../../../../api/src/usage/prices.js";

describe("PriceList", () => {
  const prices = new PriceList([
    { kind: "prompt_tokens", model: "", usdPerMillion: 1 },
    { kind: "prompt_tokens", model: "llama", usdPerMillion: 0.3 },
  ]);

  it("finds the base model of a fine-tuned model", () => {
    expect(baseOf("ft:llama:ten_1:suffix:abc123")).toBe("llama");
    expect(baseOf("llama")).toBe("llama");
  });

  it("takes the model's price over the default, and has none for an unpriced kind", () => {
    expect(prices.perMillion("prompt_tokens", "ft:llama:ten_1::abc")).toBe(0.3);
    expect(prices.perMillion("prompt_tokens", "qwen")).toBe(1);
    expect(prices.perMillion("completion_tokens", "llama")).toBeNull();
    expect(prices.cost("completion_tokens", "llama", 5)).toBeNull();
  });

  it("rounds costs to the micro-dollar", () => {
    expect(prices.cost("prompt_tokens", "llama", 1)).toBe(0); // $0.0000003
    expect(prices.cost("prompt_tokens", "llama", 10)).toBe(0.000003);
    expect(prices.cost("prompt_tokens", "llama", 3_333_333)).toBe(1);
  });
});
