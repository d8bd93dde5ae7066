// The TypeScript client against a real `imageeditor serve` (embedded mode) on a free loopback
// port: node's own test runner, run by `npm test` (and so by `make test`).
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import {
  Code,
  ImageEditorClient,
  ImageEditorError,
  ImageFormat,
  type SubmitRequest,
  TaskState,
  type WatchBatchResponse,
} from "../src/index.js";

const ROOT = resolve(import.meta.dirname, "../../../..");
const CLI = process.env.IMAGEEDITOR_CLI ?? join(ROOT, ".venv", "bin", "imageeditor");
// A 48x32 PNG gradient.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAADAAAAAgCAIAAADbtmxLAAAAQElEQVR4nO3OwQmAQADEwBUULNvSLWG+98iQAnJt37Od0713" +
    "R2lIGpKGpCFpSBqShqQhaUgakoakIWlIGpKG5Ae+pwLhA0nl7gAAAABJRU5ErkJggg==",
  "base64",
);
const GRAYSCALE: SubmitRequest["operations"] = [{ kind: { case: "grayscale", value: {} } }];

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => done(typeof address === "object" && address ? address.port : 0));
    });
  });
}

class Server {
  readonly dataDir = mkdtempSync(join(tmpdir(), "imageeditor-ts-"));
  address = "";
  apiKey = "";
  private process: ChildProcess | undefined;
  private log = "";

  constructor(private readonly workers: number) {}

  async start(): Promise<Server> {
    this.address = `127.0.0.1:${await freePort()}`;
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (!name.startsWith("IMAGEEDITOR_") || name === "IMAGEEDITOR_MODELS_DIR") {
        env[name] = value;
      }
    }
    Object.assign(env, {
      IMAGEEDITOR_DATA_DIR: this.dataDir,
      IMAGEEDITOR_LISTEN_ADDRESS: this.address,
      IMAGEEDITOR_EMBEDDED_WORKERS: String(this.workers),
      IMAGEEDITOR_SUBMIT_RATE: "1000",
      IMAGEEDITOR_SUBMIT_BURST: "1000",
    });
    this.process = spawn(CLI, ["serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
    this.process.stdout?.on("data", (chunk) => (this.log += chunk));
    this.process.stderr?.on("data", (chunk) => (this.log += chunk));
    const keyFile = join(this.dataDir, "dev-api-key");
    const deadline = Date.now() + 60_000;
    for (;;) {
      assert.equal(this.process.exitCode, null, `server exited:\n${this.log}`);
      if (existsSync(keyFile)) {
        this.apiKey = readFileSync(keyFile, "utf8").trim();
        try {
          await this.client().getStatus(randomUUID());
        } catch (error) {
          if (ImageEditorError.from(error).code === Code.NotFound) {
            return this;
          }
        }
      }
      assert.ok(Date.now() < deadline, `server did not start:\n${this.log}`);
      await new Promise((wake) => setTimeout(wake, 100));
    }
  }

  client(apiKey = this.apiKey): ImageEditorClient {
    return new ImageEditorClient({ address: this.address, apiKey, maxAttempts: 1 });
  }

  async stop(): Promise<void> {
    if (this.process && this.process.exitCode === null) {
      const exited = new Promise((done) => this.process?.once("exit", done));
      this.process.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

async function refusal(promise: Promise<unknown>): Promise<ImageEditorError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ImageEditorError, `not an ImageEditorError: ${error}`);
    return error;
  }
  assert.fail("the call succeeded");
}

describe("ImageEditorClient against imageeditor serve", () => {
  const server = new Server(2);
  let client: ImageEditorClient;

  before(async () => {
    await server.start();
    client = server.client();
  });
  after(async () => await server.stop());

  it("submits inline bytes, watches to SUCCEEDED and downloads the result", async () => {
    const task = await client.submit({
      source: { case: "imageData", value: PNG },
      operations: GRAYSCALE,
      output: { format: 2 },
    });
    assert.equal(task.state, TaskState.QUEUED);
    const seen = [];
    for await (const version of client.watch(task.id)) {
      seen.push(version);
    }
    const last = seen.at(-1);
    assert.equal(last?.state, TaskState.SUCCEEDED);
    const versions = seen.map((t) => t.version);
    assert.deepEqual(versions, [...versions].sort((a, b) => Number(a - b)));
    assert.equal(typeof last?.version, "bigint");
    const { info, data } = await client.getResult(task.id);
    assert.equal(createHash("sha256").update(data).digest("hex"), info.sha256);
    assert.equal(Number(info.sizeBytes), data.length);
  });

  it("answers a repeated request id with the same task", async () => {
    const requestId = randomUUID();
    const request: SubmitRequest = { source: { case: "imageData", value: PNG }, requestId };
    const first = await client.submit(request);
    const again = await client.submit(request);
    assert.equal(again.id, first.id);
  });

  it("reads INVALID_ARGUMENT's reason and field violation through the typed error", async () => {
    const error = await refusal(
      client.submit({ source: { case: "imageUrl", value: "not a url" } }),
    );
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.equal(error.reason, "INVALID_URL");
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["image_url"],
    );
  });

  it("refuses a wrong key as UNAUTHENTICATED and an unknown task as NOT_FOUND", async () => {
    const wrong = await refusal(server.client("iek_not-a-key").getStatus(randomUUID()));
    assert.equal(wrong.code, Code.Unauthenticated);
    const missing = await refusal(client.getStatus(randomUUID()));
    assert.equal(missing.code, Code.NotFound);
    assert.equal(missing.codeName, "NOT_FOUND");
  });

  it("takes a batch item by item: good items are tasks, a bad one its own error", async () => {
    const good: SubmitRequest = { source: { case: "imageData", value: PNG } };
    const response = await client.batchSubmit({
      requests: [good, { source: { case: "imageUrl", value: "ftp://nowhere" } }, good],
    });
    const outcomes = response.results.map((r) => r.outcome.case);
    assert.deepEqual(outcomes, ["task", "error", "task"]);
    const refused = response.results[1].outcome;
    assert.equal(refused.case, "error");
    assert.equal(refused.value.code, Code.InvalidArgument);
    assert.ok(response.batchId);
  });

  it("watches a whole batch on one stream, and resumes it after a token", async () => {
    const good: SubmitRequest = { source: { case: "imageData", value: PNG } };
    const { batchId } = await client.batchSubmit({ requests: [good, good] });
    const updates: WatchBatchResponse[] = [];
    for await (const update of client.watchBatch(batchId)) {
      updates.push(update);
    }
    const last = updates[updates.length - 1].progress;
    assert.ok(last?.complete);
    assert.equal(last?.succeeded, 2);
    // Each item's transitions in order; across items the order is the order they happened in.
    const seen = (list: WatchBatchResponse[]) =>
      list.map((u) => `${u.index}:${u.task?.version}`).sort();
    const rest: WatchBatchResponse[] = [];
    for await (const update of client.watchBatch(batchId, updates[0].resumeToken)) {
      rest.push(update);
    }
    assert.deepEqual(seen(rest), seen(updates.slice(1)));
  });

  it("pages through ListTasks", async () => {
    const label = randomUUID().slice(0, 8);
    const made = [];
    for (let n = 0; n < 5; n++) {
      made.push(
        await client.submit({ source: { case: "imageData", value: PNG }, labels: { run: label } }),
      );
    }
    const first = await client.listTasks({ pageSize: 2, labels: { run: label } });
    assert.equal(first.tasks.length, 2);
    assert.ok(first.nextPageToken);
    const all = [];
    for await (const task of client.listAll({ pageSize: 2, labels: { run: label } })) {
      all.push(task.id);
    }
    assert.deepEqual(new Set(all), new Set(made.map((t) => t.id)));
    assert.equal(all.length, 5);
  });

  it("resumes a watch after a middle version, without repeats", async () => {
    // An output of its own: an identical earlier job would hand over its result at once.
    const task = await client.submit({
      source: { case: "imageData", value: PNG },
      output: { format: ImageFormat.WEBP, quality: 77 },
    });
    const all = [];
    for await (const version of client.watch(task.id)) {
      all.push(version.version);
    }
    const middle = all[Math.floor(all.length / 2)];
    const resumed = [];
    for await (const version of client.watch(task.id, middle)) {
      resumed.push(version.version);
    }
    assert.deepEqual(resumed, all.filter((v) => v > middle));
    const past = [];
    for await (const version of client.watch(task.id, all[all.length - 1])) {
      past.push(version); // nothing after the terminal version: the watch just ends
    }
    assert.deepEqual(past, []);
  });
});

describe("cancelling", () => {
  const idle = new Server(0); // accepts tasks and runs none: they wait, QUEUED

  before(async () => {
    await idle.start();
  });
  after(async () => await idle.stop());

  it("cancels a queued task", async () => {
    const client = idle.client();
    const task = await client.submit({ source: { case: "imageData", value: PNG } });
    const cancelled = await client.cancel(task.id);
    assert.equal(cancelled.state, TaskState.CANCELLED);
    assert.equal((await client.wait(task.id)).state, TaskState.CANCELLED);
    assert.equal((await client.cancel(task.id)).state, TaskState.CANCELLED); // idempotent
  });
});
