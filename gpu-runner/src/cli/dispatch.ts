// Picks the module of `tuneserve <command>` (and `engine <subcommand>`): usage on help, a one-line UsageError on a name that does not exist.
import { UsageError } from "./args.js";

export type Command = { describe: string; load: () => Promise<{ run(argv: string[]): Promise<void> }> };

/**
 * Runs the command argv[0] names. `help`, `--help` and `-h` print the list on stdout; no name or an unknown one is a
 * UsageError (exit 2) naming what was given and where the list is.
 */
export async function dispatch(prefix: string, commands: Record<string, Command>, argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === "help" || name === "--help" || name === "-h") {
    const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(10)} ${c.describe}`);
    console.log(`usage: ${prefix} <command> [options]\n\n${lines.join("\n")}\n\n'${prefix} <command> --help' lists a command's options.`);
    return;
  }
  const known = Object.keys(commands).join(", ");
  if (!name) throw new UsageError(`${prefix}: give a command (${known}); '${prefix} --help' describes them`);
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) throw new UsageError(`${prefix}: unknown command '${name}' (the commands: ${known})`);
  await (await command.load()).run(rest);
}
