/** "Did you mean --epochs?" for a mistyped option: the closest known name by edit distance. */

export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** The known name closest to `word`, if close enough to be a typo (at most a third of its letters differ). */
export function closest(word: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(word, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** Adds a suggestion to yargs' "Unknown argument(s): x, y" message. */
export function withOptionSuggestions(message: string, known: string[]): string {
  const m = /^Unknown arguments?: (.*)$/.exec(message);
  if (!m) return message;
  const hints = m[1]!
    .split(', ')
    .map((w) => w.trim())
    .flatMap((w) => {
      const c = closest(w, known);
      return c ? [`--${w} → did you mean --${c}?`] : [];
    });
  return hints.length ? `${message}\n${hints.join('\n')}` : message;
}
