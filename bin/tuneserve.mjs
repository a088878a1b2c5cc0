#!/usr/bin/env node
// CLI launcher: runs the TypeScript sources directly through tsx, so `npx tuneserve` works right after `npm install`.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
