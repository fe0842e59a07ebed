/**
 * The access log as a FIFO the agent owns, in its state directory: the core
 * writes lines into it and the agent reads them as they come. A FIFO rather
 * than a file because nothing accumulates: no rotation or truncation to race
 * with, and client addresses (personal data) never reach the disk.
 *
 * The agent opens it read-write, so that a core (or its `-test`) opening it
 * for writing never blocks waiting for a reader, and a core restart is not
 * an end of file. A stalled agent cannot stall the core either: V2Ray and
 * Xray hand log lines to a 16-line queue and drop what does not fit.
 */
import { execFile } from 'node:child_process';
import { constants, openSync } from 'node:fs';
import { lstat, rm } from 'node:fs/promises';
import net from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** Longer lines are not access lines (an email is a uuid, an address at most ~50 characters): dropped, so a runaway line costs no memory. */
const MAX_LINE_BYTES = 4_096;

export class AccessFifo {
  private socket?: net.Socket;
  private partial = '';
  private overlong = false;

  constructor(
    readonly path: string,
    private readonly onLine: (line: string) => void,
  ) {}

  async open(): Promise<void> {
    const stat = await lstat(this.path).catch(() => null);
    if (!stat?.isFIFO()) {
      await rm(this.path, { force: true });
      await run('mkfifo', ['-m', '600', this.path]);
    }
    // A plain descriptor, not a FileHandle: the socket owns and closes it (a FileHandle would close it again when collected).
    const fd = openSync(this.path, constants.O_RDWR | constants.O_NONBLOCK);
    // A pipe handle: libuv reads it from its event loop as data comes, no thread parked on a read.
    this.socket = new net.Socket({ fd, readable: true, writable: false });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => this.take(chunk));
  }

  /** Resolves after the lines already in the pipe are read: the event loop polls the pipe before it runs what setImmediate queued. */
  settled(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  close(): void {
    // The socket owns the descriptor: destroying it closes the FIFO.
    this.socket?.destroy();
    this.socket = undefined;
  }

  private take(chunk: string): void {
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      const line = this.partial + chunk.slice(start, nl);
      this.partial = '';
      if (!this.overlong) this.onLine(line);
      this.overlong = false;
      start = nl + 1;
    }
    this.partial += chunk.slice(start);
    if (this.partial.length > MAX_LINE_BYTES) {
      this.partial = '';
      this.overlong = true;
    }
  }
}
