// Where the shared PyTorch reference fixtures live: ../shared/fixtures beside the repository (as CI lays it out).
import { fileURLToPath } from "node:url";

export const fixturesDir = fileURLToPath(new URL("../../../shared/fixtures", import.meta.url));
