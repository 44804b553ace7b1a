/**
 * Progress on stderr for long runs: a line rewritten in place on a terminal,
 * or one line per step with --progress when stderr is not a terminal. It
 * never writes to stdout, so it cannot garble --format json.
 */

/** Where progress goes. */
export interface ProgressSink {
  write(text: string): void;
  readonly isTTY: boolean;
}

/** Reports steps as they start. */
export class Progress {
  private shown = false;

  constructor(
    private readonly sink: ProgressSink,
    /** Show progress at all (a TTY, or --progress). */
    private readonly enabled: boolean,
  ) {}

  /** A step is starting (`done` steps have run of `total`). */
  step(done: number, total: number, title: string): void {
    if (!this.enabled) return;
    const line = `[${done}/${total}] ${title}`;
    if (this.sink.isTTY) {
      const width = 78;
      this.sink.write(`\r\x1b[2K${line.length > width ? `${line.slice(0, width - 3)}...` : line}`);
      this.shown = true;
    } else if (done < total) {
      this.sink.write(`${line}\n`);
    }
  }

  /** The run is over: clear the line. */
  done(): void {
    if (this.enabled && this.sink.isTTY && this.shown) this.sink.write('\r\x1b[2K');
    this.shown = false;
  }
}
