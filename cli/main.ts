// `tuneserve <command>`: dispatches to the module that owns each command; no logic lives here.
type Command = { describe: string; load: () => Promise<{ run(argv: string[]): Promise<void> }> };

const commands: Record<string, Command> = {
  serve: { describe: "run the embedded default (API + runner, SQLite, local blobs)", load: () => import("./serve.js") },
  runner: { describe: "run a gpu-runner: register with the API, lease and train jobs, serve inference", load: () => import("../gpu-runner/src/main.js") },
  engine: { describe: "engine tools: logits | generate | grads | train", load: () => import("../gpu-runner/src/cli/engine.js") },
  bench: { describe: "benchmarks: generate | train | serve | json-mask", load: () => import("../bench/main.js") },
};

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const command = name ? commands[name] : undefined;
  if (!command) {
    const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(8)} ${c.describe}`);
    console.error(`usage: tuneserve <command> [options]\n\n${lines.join("\n")}`);
    process.exitCode = name && name !== "help" && name !== "--help" ? 2 : 0;
    return;
  }
  const mod = await command.load();
  await mod.run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
