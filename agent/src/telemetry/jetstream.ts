/**
 * The publisher's transport over JetStream: a publish resolves when the stream acknowledged the message. The
 * message id lets the stream drop a retried message it already stored (duplicate window, see streams.ts). The
 * connection's reconnects are passed on, so the publisher retries what waited out the outage at once.
 */
import { Events, type JetStreamClient, type NatsConnection } from "nats";
import { awaitStreams, ensureStreams } from "../../../common/src/telemetry/streams.js";
import type { TelemetryTransport } from "./publisher.js";

export class JetStreamTransport implements TelemetryTransport {
  private readonly js: JetStreamClient;

  constructor(
    private readonly nc: NatsConnection,
    private readonly ackTimeoutMs = 5000,
  ) {
    this.js = nc.jetstream();
  }

  /** The server's max_payload (as of the current connection). */
  get maxPayloadBytes(): number | undefined {
    return this.nc.info?.max_payload;
  }

  /**
   * `ensure` adds or updates the streams (the operator does the same; whichever starts first creates them).
   * `await` only waits for them to exist: an agent under NATS authorization may not create streams, the operator
   * does.
   */
  static async connect(
    nc: NatsConnection,
    options: { streams?: "ensure" | "await"; onWaiting?: (stream: string) => void; ackTimeoutMs?: number } = {},
  ): Promise<JetStreamTransport> {
    const jsm = await nc.jetstreamManager();
    if (options.streams === "await") await awaitStreams(jsm, { onWaiting: options.onWaiting });
    else await ensureStreams(jsm);
    return new JetStreamTransport(nc, options.ackTimeoutMs);
  }

  /** Ends when the connection closes. */
  onReconnect(listener: () => void): void {
    void (async () => {
      for await (const status of this.nc.status()) if (status.type === Events.Reconnect) listener();
    })();
  }

  async publish(subject: string, data: Uint8Array, msgId: string): Promise<void> {
    await this.js.publish(subject, data, { msgID: msgId, timeout: this.ackTimeoutMs });
  }
}
