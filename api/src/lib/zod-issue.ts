// Words a zod issue for a user: the field it names and what to fix. One wording for request bodies (app.ts and the
// runner's /v1/generate), fine-tuning JSONL lines (files/jsonl.ts), adapter uploads' fields and safetensors entries,
// and settings (config.ts, blob/s3.ts, worker-deps.ts), so that a field left out reads the same everywhere.
import type { z } from "zod";

/** The field an issue names (dotted path, null for the whole value) and the message for it. */
export interface IssueText {
  param: string | null;
  message: string;
}

/** A required field left out: zod words it "Invalid input: expected string, received undefined". */
function missingField(expected: string): string {
  const kind = ["string", "number", "boolean", "array", "object"].includes(expected) ? ` (${expected === "array" || expected === "object" ? "an" : "a"} ${expected})` : "";
  return `missing; this field is required${kind}`;
}

/**
 * Describes one zod issue; `subject` names what was checked in the unknown-field message ("request", "record").
 * A wrong type or value keeps zod's own words.
 */
export function describeIssue(issue: z.core.$ZodIssue, subject: string): IssueText {
  // An unknown field is named as the param itself (its issue's path is the object holding it).
  const path = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]] : issue.path;
  const param = path.join(".") || null;
  // A record's bad key carries the reason in its nested issue ("Invalid key in record" says nothing).
  const message =
    issue.code === "invalid_key"
      ? (issue.issues[0]?.message ?? issue.message)
      : issue.code === "unrecognized_keys"
        ? `not a field of this ${subject}: check its name (a misspelt option would otherwise be left out unseen), or leave it out`
        : issue.code === "invalid_type" && issue.message.endsWith("received undefined")
          ? missingField(issue.expected)
          : issue.message;
  return { param, message };
}

/** The issue as one line, `param: message` (just the message when it names no field). */
export function issueLine(issue: z.core.$ZodIssue, subject: string): string {
  const { param, message } = describeIssue(issue, subject);
  return param ? `${param}: ${message}` : message;
}
