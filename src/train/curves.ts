/**
 * Training curves as a dependency-free SVG of small multiples: one panel for the ensemble and one
 * per block, each with accuracy (top, 0–100 %) and loss (bottom, one scale shared by every panel
 * so blocks compare at a glance), training dashed and validation solid. Panels, not colours, tell
 * the blocks apart, so 16 or 60 blocks stay legible. `reportHtml` wraps it with the run's tables.
 */
import type { EpochMetrics } from './metrics.js';
import type { RunConfig } from './options.js';

const ACC = '#1f6fb4';
const LOSS = '#d9731a';
const PANEL_W = 230;
const PANEL_H = 190;
const COLS = 4;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface Panel {
  title: string;
  trainAcc: number[];
  valAcc: number[];
  trainLoss: number[];
  valLoss: number[];
}

function meanOf(a: number[]): number {
  return a.reduce((s, x) => s + x, 0) / Math.max(a.length, 1);
}

function panels(history: EpochMetrics[], blocks: string[]): Panel[] {
  const rule = history[0]?.ensemble.rule ?? 'all';
  const ensemble: Panel = {
    title: `ensemble (${rule})`,
    trainAcc: history.map((m) => m.train.layers.all ?? NaN),
    valAcc: history.map((m) => m.ensemble.acc),
    trainLoss: history.map((m) => meanOf(m.train.loss)),
    valLoss: history.map((m) => meanOf(m.val.loss)),
  };
  return [
    ensemble,
    ...blocks.map((b, k) => ({
      // Blocks the chosen ensemble uses (a non-zero weight, when not every block is used) say so.
      title: rule !== 'all' && (history.at(-1)?.ensemble.weights[k] ?? 0) > 0 ? `${b} (in ensemble)` : b,
      trainAcc: history.map((m) => m.train.acc[k]!),
      valAcc: history.map((m) => m.val.acc[k]!),
      trainLoss: history.map((m) => m.train.loss[k]!),
      valLoss: history.map((m) => m.val.loss[k]!),
    })),
  ];
}

function polyline(values: number[], x: (i: number) => number, y: (v: number) => number, colour: string, dashed: boolean): string {
  const pts = values.flatMap((v, i) => (Number.isFinite(v) ? [`${x(i).toFixed(1)},${y(v).toFixed(1)}`] : []));
  if (!pts.length) return '';
  const dash = dashed ? ' stroke-dasharray="4 3"' : '';
  const line = pts.length > 1 ? `<polyline fill="none" stroke="${colour}" stroke-width="1.6"${dash} points="${pts.join(' ')}"/>` : '';
  const last = pts.at(-1)!.split(',');
  return line + `<circle cx="${last[0]}" cy="${last[1]}" r="2.2" fill="${dashed ? 'white' : colour}" stroke="${colour}"/>`;
}

/** The curves of a run: loss and accuracy, training and validation, for the ensemble and every block. */
export function curvesSvg(history: EpochMetrics[], blocks: string[], title: string): string {
  const ps = panels(history, blocks);
  const rows = Math.ceil(ps.length / COLS);
  const top = 64;
  const W = COLS * PANEL_W + 20;
  const H = top + rows * PANEL_H + 10;
  const epochs = Math.max(1, history.length);
  // One loss range for every panel, from the lowest to the highest loss seen (not from 0: SFF
  // losses start near log J and move by tenths, which a 0-based axis flattens).
  const losses = ps.flatMap((p) => [...p.trainLoss, ...p.valLoss]).filter(Number.isFinite);
  const lossHi = losses.length ? Math.max(...losses) : 1;
  const lossLo0 = losses.length ? Math.min(...losses) : 0;
  const lossLo = lossHi - lossLo0 < 1e-6 ? lossHi - 1 : lossLo0;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="10">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="12" y="20" font-size="14">${esc(title)}</text>`,
    // Legend: colour = metric, dash = split.
    `<g transform="translate(12,36)">`,
    `<line x1="0" x2="22" y1="0" y2="0" stroke="${ACC}" stroke-width="1.6"/><text x="26" y="3">validation accuracy</text>`,
    `<line x1="140" x2="162" y1="0" y2="0" stroke="${ACC}" stroke-width="1.6" stroke-dasharray="4 3"/><text x="166" y="3">training accuracy</text>`,
    `<line x1="270" x2="292" y1="0" y2="0" stroke="${LOSS}" stroke-width="1.6"/><text x="296" y="3">validation loss</text>`,
    `<line x1="390" x2="412" y1="0" y2="0" stroke="${LOSS}" stroke-width="1.6" stroke-dasharray="4 3"/><text x="416" y="3">training loss (epoch mean)</text>`,
    `<text x="0" y="17" fill="#555">loss axis ${lossLo.toPrecision(3)}–${lossHi.toPrecision(3)} in every panel (ensemble panel: mean over blocks)</text>`,
    `</g>`,
  ];
  ps.forEach((p, n) => {
    const ox = 10 + (n % COLS) * PANEL_W;
    const oy = top + Math.floor(n / COLS) * PANEL_H;
    const L = ox + 34;
    const R = ox + PANEL_W - 10;
    const x = (i: number) => L + (epochs === 1 ? (R - L) / 2 : (i * (R - L)) / (epochs - 1));
    const accTop = oy + 20;
    const accBottom = oy + 95;
    const lossTop = oy + 108;
    const lossBottom = oy + 168;
    const yAcc = (v: number) => accBottom - v * (accBottom - accTop);
    const yLoss = (v: number) => lossBottom - ((v - lossLo) / (lossHi - lossLo)) * (lossBottom - lossTop);
    const lastVal = p.valAcc.at(-1);
    out.push(`<g>`);
    out.push(`<text x="${L}" y="${oy + 12}" font-size="11" font-weight="${n === 0 ? 'bold' : 'normal'}">${esc(p.title)}${lastVal !== undefined && Number.isFinite(lastVal) ? ` — val ${(lastVal * 100).toFixed(1)}%` : ''}</text>`);
    out.push(`<rect x="${L}" y="${accTop}" width="${R - L}" height="${accBottom - accTop}" fill="none" stroke="#ccc"/>`);
    out.push(`<rect x="${L}" y="${lossTop}" width="${R - L}" height="${lossBottom - lossTop}" fill="none" stroke="#ccc"/>`);
    for (const v of [0.5]) out.push(`<line x1="${L}" x2="${R}" y1="${yAcc(v)}" y2="${yAcc(v)}" stroke="#eee"/>`);
    out.push(`<text x="${L - 3}" y="${accTop + 4}" text-anchor="end">100%</text><text x="${L - 3}" y="${yAcc(0.5) + 3}" text-anchor="end">50%</text><text x="${L - 3}" y="${accBottom}" text-anchor="end">0%</text>`);
    out.push(`<text x="${L - 3}" y="${lossTop + 4}" text-anchor="end">${lossHi.toPrecision(3)}</text><text x="${L - 3}" y="${lossBottom}" text-anchor="end">${lossLo.toPrecision(3)}</text>`);
    out.push(polyline(p.trainAcc, x, yAcc, ACC, true), polyline(p.valAcc, x, yAcc, ACC, false));
    out.push(polyline(p.trainLoss, x, yLoss, LOSS, true), polyline(p.valLoss, x, yLoss, LOSS, false));
    out.push(`<text x="${L}" y="${lossBottom + 11}">1</text><text x="${R}" y="${lossBottom + 11}" text-anchor="end">epoch ${epochs}</text>`);
    out.push(`</g>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** A self-contained HTML page: the curves, the best epoch per block, and the configuration. */
export function reportHtml(history: EpochMetrics[], blocks: string[], config: RunConfig, bestEpoch: number | undefined): string {
  const best = history.find((m) => m.epoch === bestEpoch) ?? history.at(-1);
  const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '' : `${(v * 100).toFixed(1)}%`);
  const rows = best
    ? blocks
        .map(
          (b, k) =>
            `<tr><td>${esc(b)}</td><td>${pct(best.val.acc[k])}</td><td>${best.val.loss[k]!.toFixed(4)}</td><td>${pct(best.train.acc[k])}</td><td>${best.train.loss[k]!.toFixed(4)}</td><td>${best.lr[k]!.toExponential(2)}</td><td>${best.ensemble.weights[k]!.toFixed(3)}</td></tr>`,
        )
        .join('\n')
    : '';
  const ensembles = best ? Object.entries(best.val.layers).map(([k, v]) => `<li>${esc(k)}: ${pct(v)}</li>`).join('') : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sff-finetune run: ${esc(config.out)}</title>
<style>body{font-family:sans-serif;margin:1.5em;max-width:1000px}table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}pre{background:#f6f6f6;padding:8px;overflow:auto}</style>
</head><body>
<h1>${esc(config.method.toUpperCase())} run on ${esc(config.model)}</h1>
<p>Data ${esc(config.data)}; ${history.length} epoch(s); ${best ? `best epoch ${best.epoch}: validation accuracy ${pct(best.ensemble.acc)} with ensemble <code>${esc(best.ensemble.rule)}</code>` : 'no epoch finished'}.</p>
${curvesSvg(history, blocks, 'Loss and accuracy per block and ensemble')}
<h2>Best epoch, per block</h2>
<table><tr><th>block</th><th>val acc</th><th>val loss</th><th>train acc</th><th>train loss</th><th>lr</th><th>ensemble weight</th></tr>
${rows}
</table>
<h2>Ensembles (validation accuracy)</h2><ul>${ensembles}</ul>
<h2>Configuration</h2><pre>${esc(JSON.stringify(config, null, 2))}</pre>
<p>Per-epoch numbers: metrics.csv and metrics.jsonl in this folder.</p>
</body></html>
`;
}
