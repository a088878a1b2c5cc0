// Builds the one Hono app both entry points serve; every route module registers itself here.
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { AppEnv, Deps } from "./deps.js";
import { ApiError, errorResponse } from "./errors.js";
import { requestId } from "./middleware/request-id.js";
import { registerRoutes } from "./routes/index.js";
import { describeIssue } from "./lib/zod-issue.js";

/** Turns a zod failure into the envelope, naming the first offending field. */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const { param, message } = describeIssue(result.error.issues[0], "request");
        throw new ApiError("invalid_request", param ? `${param}: ${message}` : message, param);
      }
    },
  });
}

export type Router = ReturnType<typeof newRouter>;

/** Hono's own 4xx exceptions (body parsing, media-type gates) mapped onto our error codes. */
function fromHttpException(err: HTTPException, contentType: string | undefined): ApiError | HTTPException {
  // The media-type gate guards the routes with a JSON body schema (uploads check their own Content-Type).
  const sent = contentType ? `Content-Type '${contentType}' is not taken here` : "the request has a body but no Content-Type";
  // A form the validator cannot parse (POST /v1/adapters) is not JSON: say what is wrong with it instead.
  const form = /^multipart\/form-data/i.test(contentType ?? "");
  const byStatus: Record<number, ApiError> = {
    400: form
      ? new ApiError("invalid_request", "multipart body: could not be parsed as multipart/form-data; send a complete form whose parts are delimited by the boundary its Content-Type names")
      : new ApiError("invalid_json", `request body could not be parsed: ${err.message}`),
    401: new ApiError("unauthorized", err.message),
    404: new ApiError("not_found", err.message),
    413: new ApiError("payload_too_large", "request body is too large"),
    415: new ApiError("unsupported_media_type", `${sent}: send the body as JSON with Content-Type: application/json`),
  };
  return byStatus[err.status] ?? (err.status < 500 ? new ApiError("invalid_request", err.message) : err);
}

export function createApp(deps: Deps) {
  const app = newRouter();
  app.use("*", requestId());
  app.use("*", async function inject(c, next) {
    c.set("deps", deps);
    await next();
  });
  const jsonLimit = bodyLimit({
    maxSize: deps.config.TUNESERVE_MAX_BODY_BYTES,
    onError: (c) => {
      // The rest of the body is not read: the connection cannot carry another request.
      c.header("Connection", "close");
      throw new ApiError("payload_too_large", `request body exceeds ${deps.config.TUNESERVE_MAX_BODY_BYTES} bytes (TUNESERVE_MAX_BODY_BYTES)`);
    },
  });
  app.use("*", async function limitJson(c, next) {
    // Uploads (multipart, raw blobs) enforce their own, larger limits while streaming. Every other body is
    // limited whatever its Content-Type says (the JSON validator also takes Application/JSON, x+json, …).
    const upload = /^multipart\/form-data/i.test(c.req.header("Content-Type") ?? "") || new URL(c.req.url).pathname.startsWith("/blobs/");
    if (upload) return next();
    return jsonLimit(c, next);
  });

  registerRoutes(app);

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "tuneserve", version: "0.1.0", description: "Fine-tune and serve LoRA adapters over HTTP." },
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  app.get("/healthz", (c) => c.json({ ok: true }));
  const methodsOf = routeMethods(app.routes);
  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    const allow = methodsOf(path);
    if (allow.length > 0) {
      return errorResponse(c, new ApiError("method_not_allowed", `${c.req.method} is not allowed on ${path}; use ${allow.join(" or ")}`, null, { Allow: allow.join(", ") }));
    }
    return errorResponse(c, new ApiError("not_found", `no route for ${c.req.method} ${path}`));
  });
  app.onError((err, c) => errorResponse(c, err instanceof HTTPException ? fromHttpException(err, c.req.header("Content-Type")) : err));
  return app;
}

/** The methods routed for a path ("/v1/models/:model" matches "/v1/models/x"), for 405 answers and their Allow header. */
export function routeMethods(routes: readonly { method: string; path: string }[]): (path: string) => string[] {
  const patterns = routes
    .filter((r) => r.method !== "ALL")
    .map((r) => ({ method: r.method, re: new RegExp(`^${r.path.split("/").map(segmentPattern).join("/")}$`) }));
  return (path) => {
    const methods = new Set(patterns.filter((p) => p.re.test(path)).map((p) => p.method));
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods];
  };
}

/** A route segment as a regular expression: ":name" one segment, ":name{…}" or "*" the rest, else literal. */
function segmentPattern(seg: string): string {
  if (seg === "*" || (seg.startsWith(":") && seg.includes("{"))) return ".*";
  if (seg.startsWith(":")) return "[^/]+";
  return seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
