// Flag parsing shared by the CLI commands: token lists and numbers with errors naming the flag, usage on --help and on a bad flag.

/** Parses "1,2,3;4,5" into rows of token ids. */
export function parseTokenRows(text: string, flag = "--tokens"): number[][] {
  const rows = text.split(";").map((row, r) =>
    row.split(",").map((s) => {
      const v = Number(s.trim());
      if (s.trim() === "" || !Number.isInteger(v) || v < 0) throw new Error(`${flag}: "${s}" in row ${r} is not a token id (use "1,2,3;4,5")`);
      return v;
    }),
  );
  return rows;
}

/** Parses a numeric flag value, or returns `fallback` when absent. */
export function numberFlag(value: string | undefined, flag: string, fallback: number, o: { integer?: boolean; min?: number } = {}): number {
  if (value === undefined) return fallback;
  const v = Number(value);
  if (!Number.isFinite(v) || (o.integer && !Number.isInteger(v)) || (o.min !== undefined && v < o.min)) {
    throw new Error(`${flag}=${value} must be ${o.integer ? "an integer" : "a number"}${o.min !== undefined ? ` ≥ ${o.min}` : ""}`);
  }
  return v;
}

/** Throws the usage text when a required flag is missing. */
export function required(value: string | undefined, flag: string, usage: string): string {
  if (!value) throw new Error(`${flag} is required\n${usage}`);
  return value;
}

/** Prints the usage when argv asks for it (`--help` or `-h`, as `tuneserve runner --help`); true if it did. */
export function printedHelp(argv: string[], usage: string): boolean {
  if (!argv.includes("--help") && !argv.includes("-h")) return false;
  console.log(usage);
  return true;
}

/** Runs a parseArgs call; its own errors (an unknown or misspelt flag, a flag without its value) get the usage after them. */
export function parseWithUsage<T>(parse: () => T, usage: string): T {
  try {
    return parse();
  } catch (err) {
    if (String((err as NodeJS.ErrnoException).code).startsWith("ERR_PARSE_ARGS")) throw new Error(`${(err as Error).message}\n${usage}`);
    throw err;
  }
}
