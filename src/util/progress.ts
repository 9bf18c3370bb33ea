/** A progress line for long jobs: count, rate, ETA; a redrawn bar on a TTY, periodic lines otherwise. */

export interface ProgressOptions {
  total?: number;
  label: string;
  unit?: string;
  /** Minimum milliseconds between two printed lines (non-TTY) or redraws (TTY). */
  intervalMs?: number;
  stream?: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };
  /** Extra fields printed after the rate (e.g. `loss 1.23`). */
  extra?: () => string;
  /** Print nothing (tests, --quiet). */
  silent?: boolean;
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "?";
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)}s`;
  const m = Math.floor(sec / 60);
  const s = Math.round(sec % 60);
  if (m < 60) return `${m}m${String(s).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m % 60).padStart(2, "0")}m`;
}

export class Progress {
  private done = 0;
  private readonly start = Date.now();
  private lastPrint = 0;
  private readonly tty: boolean;
  constructor(private readonly opts: ProgressOptions) {
    this.tty = Boolean((opts.stream ?? process.stderr).isTTY);
  }
  get count(): number {
    return this.done;
  }
  tick(n = 1): void {
    this.done += n;
    const now = Date.now();
    const interval = this.opts.intervalMs ?? (this.tty ? 100 : 5000);
    if (now - this.lastPrint >= interval) {
      this.lastPrint = now;
      this.render(false);
    }
  }
  set(n: number): void {
    this.done = n - 1;
    this.tick(1);
  }
  line(): string {
    const elapsed = (Date.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const unit = this.opts.unit ?? "it";
    const total = this.opts.total;
    let s = `${this.opts.label} ${this.done}`;
    if (total !== undefined) {
      const pct = total > 0 ? (100 * this.done) / total : 100;
      const eta = rate > 0 ? (total - this.done) / rate : Infinity;
      const width = 20;
      const filled = Math.max(0, Math.min(width, Math.round((width * this.done) / Math.max(1, total))));
      s = `${this.opts.label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${this.done}/${total} ${pct.toFixed(0)}%`;
      s += ` ${rate.toFixed(rate < 10 ? 2 : 0)} ${unit}/s ETA ${formatDuration(eta)}`;
    } else {
      s += ` ${unit} ${rate.toFixed(rate < 10 ? 2 : 0)} ${unit}/s elapsed ${formatDuration(elapsed)}`;
    }
    if (this.opts.extra) s += ` ${this.opts.extra()}`;
    return s;
  }
  private render(final: boolean): void {
    if (this.opts.silent) return;
    const stream = this.opts.stream ?? process.stderr;
    if (this.tty) stream.write(`\r\x1b[2K${this.line()}${final ? "\n" : ""}`);
    else stream.write(this.line() + "\n");
  }
  finish(): void {
    this.render(true);
  }
}
