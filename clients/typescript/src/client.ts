// The hand-written layer over the generated service: one client with the bearer key, unary
// calls retried on UNAVAILABLE (SubmitTask and BatchSubmit carry a request id, so a retry
// cannot create a second task), resumable watches of a task and of a batch, and errors as
// ImageEditorError.
import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  type BatchSubmitRequestSchema,
  type BatchSubmitResponse,
  ImageEditorService,
  type ListTasksRequestSchema,
  type ListTasksResponse,
  type SubmitTaskRequestSchema,
  type WatchBatchResponse,
} from "./gen/imageeditor/v1/image_editor_service_pb.js";
import { type ResultInfo, type Task, TaskState } from "./gen/imageeditor/v1/task_pb.js";
import { ImageEditorError } from "./errors.js";

export interface ClientOptions {
  /** host:port of the server (default: IMAGEEDITOR_ADDRESS, else 127.0.0.1:50051). */
  address?: string;
  /** The API key (default: IMAGEEDITOR_API_KEY). */
  apiKey?: string;
  /** Connect with TLS; `ca` is a PEM bundle to check the server against (default roots). */
  tls?: boolean | { ca?: string | Buffer };
  /** Attempts of a unary call that meets UNAVAILABLE (default 4). */
  maxAttempts?: number;
  /** Per-call deadline of unary calls, in ms (default 30 s). */
  timeoutMs?: number;
}

export type SubmitRequest = MessageInitShape<typeof SubmitTaskRequestSchema>;
export type BatchRequest = MessageInitShape<typeof BatchSubmitRequestSchema>;
export type ListRequest = MessageInitShape<typeof ListTasksRequestSchema>;

/** Where a resumable stream stands: how to open it from there, and what a response gives the
 * caller (undefined: nothing new) and whether it is the last. */
interface Cursor<Response, Value> {
  what: string;
  open(): AsyncIterable<Response>;
  take(response: Response): { value: Value; done: boolean } | undefined;
  /** After a clean end before the last message: whether there was nothing left to send. */
  overAfterAll(): Promise<boolean>;
}

const TERMINAL = new Set([TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED]);

/** Whether a task can change no more (SUCCEEDED, FAILED or CANCELLED). */
export function isTerminal(task: Task): boolean {
  return TERMINAL.has(task.state);
}

export class ImageEditorClient {
  readonly address: string;
  readonly raw: Client<typeof ImageEditorService>;
  private readonly maxAttempts: number;
  private readonly timeoutMs: number;

  constructor(options: ClientOptions = {}) {
    this.address = options.address ?? process.env.IMAGEEDITOR_ADDRESS ?? "127.0.0.1:50051";
    const apiKey = options.apiKey ?? process.env.IMAGEEDITOR_API_KEY ?? "";
    const bearer: Interceptor = (next) => async (request) => {
      if (apiKey) {
        request.header.set("authorization", `Bearer ${apiKey}`);
      }
      return await next(request);
    };
    const tls = options.tls ?? false;
    const transport = createGrpcTransport({
      baseUrl: `${tls ? "https" : "http"}://${this.address}`,
      interceptors: [bearer],
      nodeOptions: typeof tls === "object" && tls.ca ? { ca: tls.ca } : undefined,
      readMaxBytes: 64 * 1024 * 1024,
      writeMaxBytes: 64 * 1024 * 1024,
    });
    this.raw = createClient(ImageEditorService, transport);
    this.maxAttempts = options.maxAttempts ?? 4;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Submit one job; a request id is made when none is given, so a retry is idempotent. */
  async submit(request: SubmitRequest): Promise<Task> {
    const withId = { ...request, requestId: request.requestId || randomUUID() };
    const response = await this.unary((options) => this.raw.submitTask(withId, options));
    return required(response.task, "SubmitTask");
  }

  /** Submit up to the server's batch size at once; items succeed or fail one by one. */
  async batchSubmit(request: BatchRequest): Promise<BatchSubmitResponse> {
    const withId = { ...request, requestId: request.requestId || randomUUID() };
    return await this.unary((options) => this.raw.batchSubmit(withId, options));
  }

  async getStatus(taskId: string): Promise<Task> {
    const response = await this.unary((options) => this.raw.getStatus({ taskId }, options));
    return required(response.task, "GetStatus");
  }

  async cancel(taskId: string): Promise<Task> {
    const response = await this.unary((options) => this.raw.cancelTask({ taskId }, options));
    return required(response.task, "CancelTask");
  }

  async listTasks(request: ListRequest = {}): Promise<ListTasksResponse> {
    return await this.unary((options) => this.raw.listTasks(request, options));
  }

  /** Every task the filter matches, page after page. */
  async *listAll(request: ListRequest = {}): AsyncGenerator<Task> {
    let pageToken = "";
    do {
      const page = await this.listTasks({ ...request, pageToken });
      yield* page.tasks;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * Each version of the task after `afterVersion` (0: its current state first), until a
   * terminal one. A stream that breaks (UNAVAILABLE, a server restart, the server's stream
   * age limit) is opened again after the last version seen: no version is lost or repeated.
   */
  async *watch(taskId: string, afterVersion = 0n): AsyncGenerator<Task> {
    let last = afterVersion;
    yield* this.follow({
      what: `task ${taskId}`,
      open: () => this.raw.watchTask({ taskId, afterVersion: last }),
      take: (response) => {
        const task = required(response.task, "WatchTask");
        if (task.version <= last) {
          return undefined;
        }
        last = task.version;
        return { value: task, done: isTerminal(task) };
      },
      // A clean end before a terminal state: the server went away, or the watch began at or
      // after the terminal version and there is nothing left to send. The task's current
      // state tells which.
      overAfterAll: async () => {
        const now = await this.getStatus(taskId);
        return isTerminal(now) && now.version <= last;
      },
    });
  }

  /**
   * Every item of a batch on one stream: each item's current state (or, after
   * `resumeToken`, every transition since), then each transition as it happens, every message
   * with the batch's progress; ends after the message whose progress is complete. A stream
   * that breaks is opened again with the last message's token: nothing is lost or repeated.
   */
  async *watchBatch(batchId: string, resumeToken = ""): AsyncGenerator<WatchBatchResponse> {
    let token = resumeToken;
    yield* this.follow({
      what: `batch ${batchId}`,
      open: () => this.raw.watchBatch({ batchId, resumeToken: token }),
      take: (update) => {
        token = update.resumeToken;
        return { value: update, done: update.progress?.complete ?? false };
      },
      // A clean end before the complete message: the server went away; open it again.
      overAfterAll: async () => false,
    });
  }

  /**
   * One resumable stream (WatchTask's and WatchBatch's): opened again after UNAVAILABLE or a
   * clean end before its last message, from where the cursor stands, with backoff; gives up
   * after `maxAttempts` reconnects in a row without anything new.
   */
  private async *follow<Response, Value>(cursor: Cursor<Response, Value>): AsyncGenerator<Value> {
    let failures = 0;
    for (;;) {
      try {
        for await (const response of cursor.open()) {
          const taken = cursor.take(response);
          if (taken === undefined) {
            continue;
          }
          failures = 0;
          yield taken.value;
          if (taken.done) {
            return;
          }
        }
        if (await cursor.overAfterAll()) {
          return;
        }
        if (++failures >= this.maxAttempts) {
          throw new Error(`the watch of ${cursor.what} kept ending before its end`);
        }
        await sleep(backoffMs(failures, 0));
      } catch (error) {
        const failed = ImageEditorError.from(error);
        if (failed.code !== Code.Unavailable || ++failures >= this.maxAttempts) {
          throw failed;
        }
        await sleep(backoffMs(failures, failed.retryDelayMs));
      }
    }
  }

  /** Wait for the task to finish (by watching) and return its last version. */
  async wait(taskId: string): Promise<Task> {
    let last: Task | undefined;
    for await (const task of this.watch(taskId)) {
      last = task;
    }
    return required(last, "WatchTask");
  }

  /** The result's bytes and its info (the stream's chunks, put together). */
  async getResult(taskId: string): Promise<{ info: ResultInfo; data: Uint8Array }> {
    let info: ResultInfo | undefined;
    const chunks: Uint8Array[] = [];
    try {
      for await (const response of this.raw.getResult({ taskId })) {
        info ??= response.info;
        chunks.push(response.chunk);
      }
    } catch (error) {
      throw ImageEditorError.from(error);
    }
    return { info: required(info, "GetResult"), data: Buffer.concat(chunks) };
  }

  private async unary<T>(call: (options: { timeoutMs: number }) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call({ timeoutMs: this.timeoutMs });
      } catch (error) {
        const failed = ImageEditorError.from(error);
        if (failed.code !== Code.Unavailable || attempt >= this.maxAttempts) {
          throw failed;
        }
        await sleep(backoffMs(attempt, failed.retryDelayMs));
      }
    }
  }
}

/** The server's hint when it gave one, else 200 ms doubling up to 3 s, with full jitter. */
function backoffMs(attempt: number, hintMs: number | undefined): number {
  if (hintMs !== undefined) {
    return hintMs;
  }
  return Math.random() * Math.min(3000, 200 * 2 ** (attempt - 1));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function required<T>(value: T | undefined, method: string): T {
  if (value === undefined) {
    throw new Error(`${method}: the server's answer is missing its payload`);
  }
  return value;
}
