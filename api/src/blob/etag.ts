// Object versions as HTTP ETags: the /blobs/ route answers them and checks If-Match, and a runner compares the
// ETag of what it downloaded with the version the API listed. Stores spell them apart: S3 lists and answers them
// quoted ("abc"), R2's binding lists them bare (abc), the local store's are its own (inode-mtime).

/** The version without quotes or a weak `W/` prefix, as two spellings of one ETag compare. */
export function bareEtag(etag: string): string {
  return etag.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** A version as an ETag header value (quoted). */
export function quotedEtag(version: string): string {
  return `"${bareEtag(version)}"`;
}

/** Whether an If-Match header (a list of ETags, or `*`) lets a GET of the object at `version` through (RFC 9110 §13.1.1). */
export function ifMatchAllows(header: string, version: string | undefined): boolean {
  const tags = header.split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.includes("*")) return true;
  // A store that names no version cannot tell: the object is served, and the runner checks its size.
  if (version === undefined) return true;
  return tags.some((t) => bareEtag(t) === bareEtag(version));
}
