/** The reaper against real sockets on loopback: a client that reads nothing, and one that reads. */
import { createServer, type Server, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../../test/harness/wait.js";
import { SlowClientReaper } from "./slow-clients.js";

let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A server that writes 64 KiB chunks with back-pressure for as long as the response lives. */
async function streamingServer(reaper: SlowClientReaper, closed: ServerResponse[]): Promise<number> {
  server = createServer((_req, res) => {
    reaper.track(res);
    res.on("close", () => closed.push(res));
    res.writeHead(200, { "content-type": "text/event-stream" });
    const chunk = "x".repeat(64 * 1024);
    const pump = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once("drain", pump);
    };
    pump();
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

function request(port: number, read: boolean): Socket {
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  if (read) socket.on("data", () => {});
  else socket.pause();
  return socket;
}

describe("SlowClientReaper", () => {
  it("closes the response of a client that stops reading, and only that one", async () => {
    const reaped: ServerResponse[] = [];
    const closed: ServerResponse[] = [];
    const reaper = new SlowClientReaper(300, (res) => reaped.push(res));
    const port = await streamingServer(reaper, closed);
    request(port, true);
    request(port, false);
    await waitFor(() => reaped.length === 1 && closed.length === 1, {
      description: "the stalled response reaped",
      timeoutMs: 20_000,
    });
    expect(reaper.size).toBe(1); // the reading client's response is still tracked, and flowing
  }, 30_000);
});
