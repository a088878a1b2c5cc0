// Serving-worker bootstrap: registers tsx in this thread (loader hooks are not inherited by workers),
// then loads the TypeScript worker body.
import { register } from "tsx/esm/api";

register();
await import("./worker-main.ts");
