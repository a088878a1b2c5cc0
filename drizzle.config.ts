// drizzle-kit generates the SQL in migrations/ from api/src/db/schema.ts; wrangler (D1) and the Node entry apply it.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./api/src/db/schema.ts",
  out: "./migrations",
});
