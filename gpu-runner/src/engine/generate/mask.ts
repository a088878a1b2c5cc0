// The mask of a constraint that checks tokens one by one (banned text, tool calls outside a call).

/** Sets to −∞, in place, the logits of the tokens `allows` refuses; throws `none` when no token is left. */
export function maskRefused(logits: Float32Array, allows: (t: number) => boolean, none: string): void {
  let any = false;
  for (let t = 0; t < logits.length; t++) {
    if (logits[t] === -Infinity) continue;
    if (allows(t)) any = true;
    else logits[t] = -Infinity;
  }
  if (!any) throw new Error(none);
}
