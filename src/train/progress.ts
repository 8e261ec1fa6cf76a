/** A progress line with throughput and ETA on a TTY; nothing between epochs otherwise. */

export class Progress {
  private start = 0;
  private last = 0;
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = Boolean(process.stderr.isTTY),
  ) {}

  begin(): void {
    this.start = performance.now();
    this.last = 0;
  }

  update(label: string, done: number, total: number, images: number, extra = ''): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.last < 100 && done < total) return;
    this.last = now;
    const secs = (now - this.start) / 1000;
    const rate = images / Math.max(secs, 1e-9);
    const eta = done > 0 ? (secs * (total - done)) / done : 0;
    const width = 24;
    const filled = Math.round((width * done) / Math.max(total, 1));
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    this.stream.write(`\r${label} ${bar} ${done}/${total} ${rate.toFixed(0)} img/s ETA ${formatSeconds(eta)} ${extra}\x1b[K`);
  }

  end(): void {
    if (this.enabled) this.stream.write('\r\x1b[K');
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
