/** Maps agent errors to gRPC status codes, so callers can tell bad input from unknown workers from our faults. */
import * as grpc from "@grpc/grpc-js";
import { InvalidRecordError } from "../telemetry/collectives.js";
import {
  AckTimeoutError,
  CommandStreamClosedError,
  InvalidCommandError,
  InvalidRegistrationError,
  NoCommandStreamError,
  UnknownCommandError,
  UnknownWorkerError,
} from "../workers/registry.js";

/** Thrown by handlers for requests that are wrong in themselves. */
export class InvalidArgumentError extends Error {
  override name = "InvalidArgumentError";
}

export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** A call this agent cannot carry out (yet): answered UNIMPLEMENTED, never with a success it did not earn. */
export class UnimplementedError extends Error {
  override name = "UnimplementedError";
}

/** A bounded resource is full (the telemetry buffer while NATS is away): the caller may retry later. */
/** The call cannot be served now for a reason outside the request (answered UNAVAILABLE). */
export class UnavailableError extends Error {
  override name = "UnavailableError";
}

/** The call cannot succeed on this node as it is (no GPU to measure, too few GPUs); the message says why. */
export class FailedPreconditionError extends Error {
  override name = "FailedPreconditionError";
}

export class ResourceExhaustedError extends Error {
  override name = "ResourceExhaustedError";
}

export function statusOf(err: unknown): grpc.StatusObject {
  const details = err instanceof Error ? err.message : String(err);
  const code =
    err instanceof InvalidArgumentError ||
    err instanceof InvalidRecordError ||
    err instanceof InvalidRegistrationError ||
    err instanceof InvalidCommandError
      ? grpc.status.INVALID_ARGUMENT
      : err instanceof UnknownWorkerError || err instanceof NotFoundError || err instanceof UnknownCommandError
        ? grpc.status.NOT_FOUND
        : // UNAVAILABLE, not FAILED_PRECONDITION: a worker (re)opens its stream on its own, so the same call may
          // succeed a moment later without anyone fixing anything; that is what UNAVAILABLE tells a retrying client.
          err instanceof NoCommandStreamError ||
            err instanceof CommandStreamClosedError ||
            err instanceof UnavailableError
          ? grpc.status.UNAVAILABLE
          : err instanceof AckTimeoutError
            ? grpc.status.DEADLINE_EXCEEDED
            : err instanceof UnimplementedError
              ? grpc.status.UNIMPLEMENTED
              : err instanceof ResourceExhaustedError
                ? grpc.status.RESOURCE_EXHAUSTED
                : err instanceof FailedPreconditionError
                  ? grpc.status.FAILED_PRECONDITION
                  : err instanceof Error && err.name === "TimeoutError"
                    ? grpc.status.DEADLINE_EXCEEDED
                    : grpc.status.INTERNAL;
  return { code, details, metadata: new grpc.Metadata() };
}

export const statusName = (code: grpc.status): string => grpc.status[code] ?? String(code);

/**
 * Wraps an async unary handler: the result or the mapped error goes to the callback, and every call is counted
 * (onDone receives the status code).
 */
export function unary<Req, Res>(
  handler: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
  onDone: (code: grpc.status) => void,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handler(call.request, call))
      .then(
        (response) => {
          onDone(grpc.status.OK);
          callback(null, response);
        },
        (err: unknown) => {
          const s = statusOf(err);
          onDone(s.code);
          callback(s);
        },
      );
  };
}
