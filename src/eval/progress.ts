/**
 * A one-line progress bar with rate and time left, redrawn in place on a terminal and printed at most every few
 * seconds otherwise (a log file should not fill with bars).
 */
export class Progress {
  private done = 0;
  private failed = 0;
  private readonly started = Date.now();
  private lastPrinted = 0;

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
    /** Studies already done before this run (resumed): counted as done but not in the rate. */
    private readonly resumed = 0,
  ) {
    this.done = resumed;
  }

  tick(ok: boolean): void {
    this.done += 1;
    if (!ok) this.failed += 1;
    this.print(false);
  }

  finish(): void {
    this.print(true);
    if (this.out.isTTY) this.out.write('\n');
  }

  line(now = Date.now()): string {
    const width = 30;
    const frac = this.total ? this.done / this.total : 1;
    const filled = Math.round(frac * width);
    const ran = this.done - this.resumed;
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? ran / seconds : 0;
    const left = rate > 0 ? (this.total - this.done) / rate : Number.NaN;
    const eta = Number.isFinite(left) ? formatDuration(left) : '--';
    const failed = this.failed ? ` · ${this.failed} failed` : '';
    const resumed = this.resumed ? ` · ${this.resumed} from an earlier run` : '';
    return `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${this.done}/${this.total}${failed}${resumed} · ${rate.toFixed(2)}/s · ETA ${eta}`;
  }

  private print(force: boolean): void {
    const now = Date.now();
    const tty = this.out.isTTY === true;
    if (!force && now - this.lastPrinted < (tty ? 100 : 5000)) return;
    this.lastPrinted = now;
    this.out.write(tty ? `\r${this.line(now)}` : `${this.line(now)}\n`);
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}
