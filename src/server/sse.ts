/**
 * Server-Sent Events writer over a raw Node response, with backpressure: when the socket's buffer is full, the
 * writer waits for 'drain' (or for the client to go away) before taking the next chunk from the generation.
 */
import type { ServerResponse } from 'node:http';

const event = (payload: object | string): string =>
  `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`;

export class SseWriter {
  private gone = false;

  constructor(private readonly res: ServerResponse) {
    res.once('close', () => {
      this.gone = true;
    });
  }

  /** Whether the client is still there. */
  get open(): boolean {
    return !this.gone && !this.res.destroyed;
  }

  /**
   * Sends the status line and headers at once, with `first` (an event) in the same write when given: one packet
   * and one wake-up of the client instead of two.
   */
  start(headers: Record<string, string>, first?: object | string): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    if (first === undefined) this.res.flushHeaders();
    else if (this.open) this.res.write(event(first)); // a fresh socket buffer: below the high-water mark
  }

  /** Writes one `data:` event; resolves when it is buffered below the high-water mark or the client left. */
  async data(payload: object | string): Promise<void> {
    return this.write(event(payload));
  }

  /** Writes one named event (`event: NAME` + `data:`), as the Responses API streams. */
  async named(name: string, payload: object): Promise<void> {
    return this.write(`event: ${name}\n${event(payload)}`);
  }

  private async write(text: string): Promise<void> {
    if (!this.open) return;
    if (this.res.write(text)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  end(): void {
    if (this.open) this.res.end();
  }
}
