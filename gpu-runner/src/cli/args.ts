// Flag parsing shared by the CLI commands: token lists, numbers and folders with errors naming the flag, usage on
// --help, and one-line UsageErrors (exit 2) for every mistake in how a command was called.
import { statSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake in how a command was called (a flag missing, misspelt or with a bad value): one line, exit 2, no stack. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** "(tuneserve engine logits --help lists the flags)", from the first line of a command's usage text. */
export function helpHint(usage: string): string {
  const command = /^usage: (tuneserve(?: [a-z][a-z-]*)*)/.exec(usage)?.[1] ?? "tuneserve";
  return `(${command} --help lists the flags)`;
}

/** Parses "1,2,3;4,5" into rows of token ids. */
export function parseTokenRows(text: string, flag = "--tokens"): number[][] {
  const rows = text.split(";").map((row, r) =>
    row.split(",").map((s) => {
      const v = Number(s.trim());
      if (s.trim() === "" || !Number.isInteger(v) || v < 0) throw new UsageError(`${flag}: "${s}" in row ${r} is not a token id (use "1,2,3;4,5")`);
      return v;
    }),
  );
  return rows;
}

/** Throws a UsageError naming the first token of `rows` outside a vocabulary of `vocab` ids. */
export function checkVocabulary(rows: number[][], vocab: number, flag = "--tokens"): void {
  for (const t of rows.flat()) if (t >= vocab) throw new UsageError(`${flag}: ${t} is outside the vocabulary 0..${vocab - 1}`);
}

/** Parses a numeric flag value, or returns `fallback` when absent; `above` is an exclusive lower bound. */
export function numberFlag(value: string | undefined, flag: string, fallback: number, o: { integer?: boolean; min?: number; above?: number; max?: number; below?: number } = {}): number {
  if (value === undefined) return fallback;
  const v = Number(value);
  const bad = value.trim() === "" || !Number.isFinite(v) || (o.integer && !Number.isSafeInteger(v)) ||
    (o.min !== undefined && v < o.min) || (o.above !== undefined && v <= o.above) || (o.max !== undefined && v > o.max) || (o.below !== undefined && v >= o.below);
  if (bad) {
    const bounds = [o.min !== undefined && `≥ ${o.min}`, o.above !== undefined && `> ${o.above}`, o.max !== undefined && `≤ ${o.max}`, o.below !== undefined && `< ${o.below}`].filter(Boolean);
    throw new UsageError(`${flag}=${value} must be ${o.integer ? "an integer" : "a number"}${bounds.length ? ` ${bounds.join(" and ")}` : ""}`);
  }
  return v;
}

/** Returns a required flag's value; a missing or empty one is a UsageError pointing at --help. */
export function required(value: string | undefined, flag: string, usage: string): string {
  if (value === undefined) throw new UsageError(`${flag} is required ${helpHint(usage)}`);
  if (value === "") throw new UsageError(`${flag} is empty ${helpHint(usage)}`);
  return value;
}

/** Checks that a folder flag names a folder (holding `needs`, when given): a UsageError names the flag otherwise. */
export function existingFolder(value: string, flag: string, needs?: string): string {
  const kind = statSync(value, { throwIfNoEntry: false });
  if (!kind) throw new UsageError(`${flag} ${value}: no such folder`);
  if (!kind.isDirectory()) throw new UsageError(`${flag} ${value}: not a folder`);
  if (needs && !statSync(join(value, needs), { throwIfNoEntry: false })?.isFile()) throw new UsageError(`${flag} ${value}: the folder has no ${needs}`);
  return value;
}

/** Checks that an input file flag names a file: a UsageError names the flag otherwise. */
export function existingFile(value: string, flag: string, what = "file"): string {
  const kind = statSync(value, { throwIfNoEntry: false });
  if (!kind) throw new UsageError(`${flag} ${value}: no such file`);
  if (kind.isDirectory()) throw new UsageError(`${flag} ${value}: is a folder; give the ${what}`);
  return value;
}

/** Checks that an output file flag points into an existing folder, before any work is done for it. */
export function outputFile(value: string, flag: string): string {
  const dir = dirname(value);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`${flag} ${value}: the folder ${dir} does not exist`);
  if (statSync(value, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`${flag} ${value}: is a folder; give a file name`);
  return value;
}

/** Checks that an output folder flag is a folder or not there yet (it is made), before any work is done for it. */
export function outputFolder(value: string, flag: string): string {
  const kind = statSync(value, { throwIfNoEntry: false });
  if (kind && !kind.isDirectory()) throw new UsageError(`${flag} ${value}: not a folder`);
  return value;
}

/** Prints the usage when argv asks for it (`--help` or `-h`, as `tuneserve runner --help`); true if it did. */
export function printedHelp(argv: string[], usage: string): boolean {
  if (!argv.includes("--help") && !argv.includes("-h")) return false;
  console.log(usage);
  return true;
}

/**
 * `--seed -5` as `--seed=-5`: parseArgs takes a value that starts with '-' for a flag, and refuses it as ambiguous,
 * while every negative value here is a number.
 */
export function joinNegativeValues(argv: string[], options: ParseArgsConfig["options"] = {}): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith("--") ? argv[i].slice(2) : undefined;
    const next = argv[i + 1];
    if (name && options[name]?.type === "string" && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else out.push(argv[i]);
  }
  return out;
}

/** parseArgs with negative numbers taken as values, and its own errors (an unknown or misspelt flag, a flag without its value) as one-line UsageErrors. */
export function parseFlags<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ ...config, args: joinNegativeValues(config.args ?? [], config.options) });
  } catch (err) {
    if (!String((err as NodeJS.ErrnoException).code).startsWith("ERR_PARSE_ARGS")) throw err;
    // Node's messages run over lines and suggest '--' tricks that do not apply here: keep the first sentences.
    const message = (err as Error).message.split("\n").slice(0, 2).join(" ").replace(/\. To specify .*$/, "").replace(/ To specify .*$/, "");
    throw new UsageError(`${message} ${helpHint(usage)}`);
  }
}
