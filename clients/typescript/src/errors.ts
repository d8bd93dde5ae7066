// Typed errors: what the service puts in `grpc-status-details-bin` (google.rpc.Status with
// ErrorInfo, BadRequest and RetryInfo), decoded, so a caller reads `error.reason` and
// `error.fieldViolations` instead of parsing messages.
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

export { Code };

export interface FieldViolation {
  field: string;
  description: string;
}

export class ImageEditorError extends Error {
  /** The gRPC status code (Code.InvalidArgument is 3, as on the wire). */
  readonly code: Code;
  /** Its canonical name: "INVALID_ARGUMENT", "NOT_FOUND", … */
  readonly codeName: string;
  /** ErrorInfo.reason: a stable machine-readable reason ("INVALID_IMAGE", "RATE_LIMITED", …). */
  readonly reason: string;
  /** ErrorInfo.metadata. */
  readonly metadata: Record<string, string>;
  /** BadRequest.field_violations (INVALID_ARGUMENT). */
  readonly fieldViolations: FieldViolation[];
  /** RetryInfo.retry_delay in milliseconds, when the service says when to try again. */
  readonly retryDelayMs: number | undefined;

  constructor(cause: ConnectError) {
    super(cause.rawMessage, { cause });
    this.name = "ImageEditorError";
    this.code = cause.code;
    this.codeName = codeName(cause.code);
    const info = cause.findDetails(ErrorInfoSchema)[0];
    this.reason = info?.reason ?? "";
    this.metadata = { ...(info?.metadata ?? {}) };
    this.fieldViolations = cause
      .findDetails(BadRequestSchema)
      .flatMap((bad) => bad.fieldViolations)
      .map(({ field, description }) => ({ field, description }));
    const delay = cause.findDetails(RetryInfoSchema)[0]?.retryDelay;
    this.retryDelayMs =
      delay === undefined ? undefined : Number(delay.seconds) * 1000 + delay.nanos / 1e6;
  }

  /** `error` as an ImageEditorError (a ConnectError, or anything thrown, as UNKNOWN). */
  static from(error: unknown): ImageEditorError {
    if (error instanceof ImageEditorError) {
      return error;
    }
    return new ImageEditorError(ConnectError.from(error));
  }
}

/** "INVALID_ARGUMENT" for Code.InvalidArgument: the names gRPC documents. */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
