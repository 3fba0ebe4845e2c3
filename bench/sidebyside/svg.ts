// A small SVG line chart (no dependencies) for the side-by-side benchmark's plots: x on a
// log scale (number of Services), y linear from 0 or logarithmic, one line per series with
// point markers, optional dashed reference lines (targets), axis labels, ticks and a legend.

export interface Series {
  name: string;
  color: string;
  /** Dash pattern (SVG stroke-dasharray), e.g. "6 3"; solid when absent. */
  dash?: string;
  /** [x, y]; points with a non-finite or (log y) non-positive y are left out, breaking the line. */
  points: Array<[number, number]>;
}

export interface RefLine {
  y: number;
  label: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  yLog?: boolean;
  series: Series[];
  refs?: RefLine[];
  width?: number;
  height?: number;
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** 1234 → "1.2k", 0.05 → "0.05", 20000000 → "20M". */
export function shortNumber(v: number): string {
  const a = Math.abs(v);
  const trim = (x: number, d: number) => x.toFixed(d).replace(/\.?0+$/, "");
  if (a >= 1e9) return `${trim(v / 1e9, 1)}G`;
  if (a >= 1e6) return `${trim(v / 1e6, 1)}M`;
  if (a >= 1e3) return `${trim(v / 1e3, 1)}k`;
  if (a >= 1 || a === 0) return trim(v, 1);
  return trim(v, Math.min(6, 1 - Math.floor(Math.log10(a))));
}

/** A "nice" tick step for a linear axis from 0 to max with about `n` ticks. */
export function niceStep(max: number, n = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

const f1 = (v: number) => (Math.round(v * 10) / 10).toString();

export function lineChart(o: ChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 420;
  const longest = Math.max(0, ...o.series.map((s) => s.name.length));
  const m = { left: 78, right: Math.max(120, 58 + Math.ceil(longest * 6.8)), top: 44, bottom: 58 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const yLog = !!o.yLog;
  const ok = (y: number) => Number.isFinite(y) && (!yLog || y > 0);

  // x: log10 over the data's range, half a decade of padding when there is one x value.
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0])).filter((x) => x > 0);
  let lx0 = xs.length ? Math.log10(Math.min(...xs)) : 1;
  let lx1 = xs.length ? Math.log10(Math.max(...xs)) : 4;
  if (lx1 - lx0 < 1e-9) {
    lx0 -= 0.5;
    lx1 += 0.5;
  }
  const padX = (lx1 - lx0) * 0.06;
  lx0 -= padX;
  lx1 += padX;
  const X = (x: number) => m.left + ((Math.log10(x) - lx0) / (lx1 - lx0)) * pw;

  // y
  const ys = [...o.series.flatMap((s) => s.points.map((p) => p[1])), ...(o.refs ?? []).map((r) => r.y)].filter(ok);
  let Y: (y: number) => number;
  const yTicks: number[] = [];
  if (yLog) {
    let d0 = ys.length ? Math.floor(Math.log10(Math.min(...ys))) : 0;
    let d1 = ys.length ? Math.ceil(Math.log10(Math.max(...ys))) : 1;
    if (d1 === d0) d1 = d0 + 1;
    if (d1 - d0 > 12) d0 = d1 - 12;
    Y = (y: number) => m.top + ph - ((Math.log10(y) - d0) / (d1 - d0)) * ph;
    for (let d = d0; d <= d1; d++) {
      yTicks.push(10 ** d);
      if (d1 - d0 <= 3 && d < d1) yTicks.push(2 * 10 ** d, 5 * 10 ** d);
    }
  } else {
    const max = ys.length ? Math.max(...ys) : 1;
    const step = niceStep(max * 1.05);
    const top = Math.max(step, Math.ceil((max * 1.05) / step) * step);
    Y = (y: number) => m.top + ph - (y / top) * ph;
    for (let t = 0; t <= top + step / 2; t += step) yTicks.push(t);
  }

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(o.title)}</text>`);

  // grid and y ticks
  for (const t of yTicks) {
    const y = f1(Y(t));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(shortNumber(t))}</text>`);
  }
  // x ticks: each decade, and the data's x values
  const xTicks = new Set<number>();
  for (let d = Math.ceil(lx0); d <= Math.floor(lx1); d++) xTicks.add(10 ** d);
  for (const x of xs) xTicks.add(x);
  for (const t of [...xTicks].sort((a, b) => a - b)) {
    const x = f1(X(t));
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#efefef"/>`);
    out.push(`<text x="${x}" y="${m.top + ph + 16}" text-anchor="middle">${escapeXml(shortNumber(t))}</text>`);
  }
  // axes
  out.push(`<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#333"/>`);
  out.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 16}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);

  // reference lines
  for (const r of o.refs ?? []) {
    if (!ok(r.y)) continue;
    const y = f1(Y(r.y));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#b00020" stroke-dasharray="2 4" stroke-width="1.5"/>`);
    out.push(`<text x="${m.left + pw - 4}" y="${f1(Y(r.y) - 5)}" text-anchor="end" fill="#b00020" font-size="11">${escapeXml(r.label)}</text>`);
  }

  // series
  for (const s of o.series) {
    const pts = s.points.filter((p) => p[0] > 0).sort((a, b) => a[0] - b[0]);
    const dash = s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : "";
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) out.push(`<polyline fill="none" stroke="${escapeXml(s.color)}" stroke-width="2"${dash} points="${run.join(" ")}"/>`);
      run = [];
    };
    for (const [x, y] of pts) {
      if (!ok(y)) {
        flush();
        continue;
      }
      run.push(`${f1(X(x))},${f1(Y(y))}`);
    }
    flush();
    for (const [x, y] of pts) {
      if (!ok(y)) continue;
      out.push(`<circle cx="${f1(X(x))}" cy="${f1(Y(y))}" r="3.5" fill="${escapeXml(s.color)}"><title>${escapeXml(`${s.name}: ${shortNumber(x)} → ${shortNumber(y)}`)}</title></circle>`);
    }
  }

  // legend
  const lx = m.left + pw + 18;
  o.series.forEach((s, i) => {
    const y = m.top + 10 + i * 22;
    const dash = s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : "";
    out.push(`<line x1="${lx}" y1="${y}" x2="${lx + 26}" y2="${y}" stroke="${escapeXml(s.color)}" stroke-width="2"${dash}/>`);
    out.push(`<circle cx="${lx + 13}" cy="${y}" r="3.5" fill="${escapeXml(s.color)}"/>`);
    out.push(`<text x="${lx + 34}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
