/**
 * Progress on stderr (stdout stays one JSON document with --json): a cli-progress bar on a terminal, coloured
 * unless NO_COLOR is set (https://no-color.org) or TERM=dumb; plain lines, at most one every `everyMs`, when
 * stderr is not a terminal (CI logs, pipes).
 */
import cliProgress from 'cli-progress';

export function stderrIsTty(): boolean {
  return Boolean(process.stderr.isTTY);
}

/** Colour on stderr: only on a terminal, never with NO_COLOR (any non-empty value) or TERM=dumb. */
export function colourEnabled(env: NodeJS.ProcessEnv = process.env, tty: boolean = stderrIsTty()): boolean {
  return tty && !(env.NO_COLOR !== undefined && env.NO_COLOR !== '') && env.TERM !== 'dumb';
}

export interface ProgressBar {
  /** Sets the position (and the total, when it changed) and the text after the bar. */
  update(value: number, total: number, text?: string): void;
  /** Ends the bar (a final plain line off a terminal when `finalLine`). */
  stop(finalLine?: string): void;
}

export function progressBar(label: string, opts: { everyMs?: number; unit?: string } = {}): ProgressBar {
  const unit = opts.unit ?? '';
  if (!stderrIsTty()) {
    let last = -Infinity;
    let lastLine = '';
    return {
      update(value, total, text) {
        const now = Date.now();
        const line = `${label}: ${value}/${total}${unit ? ` ${unit}` : ''}${text ? ` ${text}` : ''}`;
        if (now - last < (opts.everyMs ?? 2000) || line === lastLine) return;
        last = now;
        lastLine = line;
        process.stderr.write(line + '\n');
      },
      stop(finalLine) {
        if (finalLine) process.stderr.write(finalLine + '\n');
      },
    };
  }
  const colour = colourEnabled();
  const c = (code: number, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${c(1, label)} ${colour ? '\x1b[36m{bar}\x1b[0m' : '{bar}'} {value}/{total}${unit ? ` ${unit}` : ''} {text}`,
      barCompleteChar: colour ? '█' : '#',
      barIncompleteChar: colour ? '░' : '.',
      hideCursor: true,
      clearOnComplete: true,
      barsize: 24,
      fps: 10,
      etaBuffer: 20,
    },
    cliProgress.Presets.legacy,
  );
  let started = false;
  return {
    update(value, total, text = '') {
      if (!started) {
        bar.start(Math.max(1, total), value, { text });
        started = true;
      } else {
        if (total !== bar.getTotal()) bar.setTotal(Math.max(1, total));
        bar.update(value, { text });
      }
    },
    stop(finalLine) {
      if (started) bar.stop();
      if (finalLine) process.stderr.write(finalLine + '\n');
    },
  };
}
