/** A dependency-free SVG plot of validation accuracy per block and for the ensemble, over epochs. */

export interface Series {
  name: string;
  values: number[];
  emphasis?: boolean;
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function accuracySvg(series: Series[], title: string): string {
  const W = 720;
  const H = 420;
  const L = 56;
  const R = 170;
  const T = 36;
  const B = 44;
  const epochs = Math.max(1, ...series.map((s) => s.values.length));
  const x = (i: number) => L + (epochs === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (epochs - 1));
  const y = (v: number) => T + (1 - v) * (H - T - B);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${L}" y="22" font-size="14">${esc(title)}</text>`,
  ];
  for (let t = 0; t <= 10; t++) {
    const v = t / 10;
    out.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
    out.push(`<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${(v * 100).toFixed(0)}%</text>`);
  }
  const step = Math.max(1, Math.ceil(epochs / 10));
  for (let i = 0; i < epochs; i += step) out.push(`<text x="${x(i)}" y="${H - B + 18}" text-anchor="middle">${i + 1}</text>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">epoch</text>`);
  series.forEach((s, k) => {
    const colour = s.emphasis ? '#000' : PALETTE[k % PALETTE.length]!;
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const width = s.emphasis ? 3 : 1.5;
    if (s.values.length > 1) out.push(`<polyline fill="none" stroke="${colour}" stroke-width="${width}" points="${pts}"/>`);
    s.values.forEach((v, i) => out.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="${s.emphasis ? 3 : 2}" fill="${colour}"/>`));
    const ly = T + 8 + k * 16;
    out.push(`<line x1="${W - R + 12}" x2="${W - R + 32}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="${width}"/>`);
    const last = s.values.at(-1);
    out.push(`<text x="${W - R + 38}" y="${ly + 4}">${esc(s.name)}${last !== undefined ? ` ${(last * 100).toFixed(1)}%` : ''}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
