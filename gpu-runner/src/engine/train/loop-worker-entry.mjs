// Worker bootstrap for training: registers tsx in this thread (loader hooks are not inherited by
// workers), then loads the TypeScript worker body.
import { register } from "tsx/esm/api";

register();
await import("./loop-worker-main.ts");
