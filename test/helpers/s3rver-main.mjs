// Child-process entry of the test S3 server (test/helpers/s3rver.ts): runs s3rver on a free port and prints it.
// Runs in its own process because s3rver needs NODE_OPTIONS=--openssl-legacy-provider (DES continuation tokens).
import S3rver from "s3rver";

const [directory, bucket] = process.argv.slice(2);
if (!directory || !bucket) {
  console.error("usage: s3rver-main.mjs <directory> <bucket>");
  process.exit(2);
}
const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
const { address, port } = await server.run();
process.stdout.write(JSON.stringify({ address, port }) + "\n");

// The parent holds our stdin open; when it closes (parent stopped us or died), shut down.
const stop = () => server.close().finally(() => process.exit(0));
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
process.once("SIGTERM", stop);
