// The side-by-side benchmark's SVG line charts (bench/sidebyside/svg.ts) are well-formed XML
// with what a reader needs: title, axis labels, one line and legend entry per series, reference
// lines; and the report (bench/sidebyside/report.ts) renders a plot per metric.
import { describe, expect, it } from "vitest";
import { escapeXml, lineChart, niceStep, shortNumber } from "../../bench/sidebyside/svg.js";
import { METRICS, evaluateTargets, renderPlots, renderReport } from "../../bench/sidebyside/report.js";
import type { Report } from "../../bench/sidebyside/types.js";

/** A small XML well-formedness check: balanced tags, quoted attributes, escaped text. */
function wellFormed(xml: string): string | null {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, "");
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->/g;
  let last = 0;
  let roots = 0;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const text = body.slice(last, m.index);
    if (/[<>]/.test(text)) return `stray markup in text: ${JSON.stringify(text.slice(0, 60))}`;
    if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(text)) return `unescaped & in ${JSON.stringify(text.slice(0, 60))}`;
    last = re.lastIndex;
    if (m[0].startsWith("<!--")) continue;
    const [, close, name, attrs, selfClose] = m;
    for (const a of (attrs ?? "").matchAll(/="([^"]*)"/g)) {
      if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(a[1]!)) return `unescaped & in attribute of <${name}>`;
    }
    if (close) {
      if (stack.pop() !== name) return `</${name}> closes the wrong element`;
    } else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
  }
  if (body.slice(last).trim() !== "") return "text after the root element";
  if (stack.length) return `unclosed <${stack.join("> <")}>`;
  if (roots !== 1) return `${roots} root elements`;
  return null;
}

describe("side-by-side SVG charts", () => {
  const chart = lineChart({
    title: "TCP <1 stream> & more",
    xLabel: "Services installed",
    yLabel: "Gbit/s",
    series: [
      { name: "iptables-legacy", color: "#e6850e", points: [[10, 18], [1000, 17], [10000, 12]] },
      { name: "tapvip \"fast\"", color: "#1a9a3b", dash: "6 4", points: [[10, 4], [1000, NaN], [10000, 4.2]] },
    ],
    refs: [{ y: 5, label: "target ≥ 5" }],
  });

  it("is well-formed XML with one svg root", () => {
    expect(wellFormed(chart)).toBeNull();
    expect(chart).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(wellFormed("<svg><g></svg>")).not.toBeNull(); // the checker does catch errors
    expect(wellFormed("<svg>a & b</svg>")).not.toBeNull();
  });

  it("escapes text, draws a line per series (broken at missing values), legend, ticks and reference lines", () => {
    expect(chart).toContain("TCP &lt;1 stream&gt; &amp; more");
    expect(chart).toContain("tapvip &quot;fast&quot;");
    expect(chart.match(/<polyline /g)).toHaveLength(1); // tapvip's line has a gap at 1000: no segment of 2 points
    expect(chart.match(/<circle /g)?.length).toBe(3 + 2 + 2); // 5 finite points + 2 legend markers
    expect(chart).toContain(">target ≥ 5</text>");
    for (const t of [">10<", ">100<", ">1k<", ">10k<"]) expect(chart).toContain(t);
    expect(chart).toContain('stroke-dasharray="6 4"');
  });

  it("log y axis: decades, non-positive values left out", () => {
    const c = lineChart({ title: "t", xLabel: "x", yLabel: "ms", yLog: true, series: [{ name: "a", color: "#000", points: [[10, 0.5], [100, 0], [1000, 20000]] }] });
    expect(wellFormed(c)).toBeNull();
    expect(c).toContain(">0.1<");
    expect(c).toContain(">100k<");
    expect(c.match(/<circle /g)).toHaveLength(2 + 1);
  });

  it("formats numbers and steps", () => {
    expect(shortNumber(1234)).toBe("1.2k");
    expect(shortNumber(400000)).toBe("400k");
    expect(shortNumber(0.05)).toBe("0.05");
    expect(shortNumber(12)).toBe("12");
    expect(niceStep(19)).toBe(5);
    expect(niceStep(0.9)).toBe(0.2);
    expect(escapeXml(`<'&">`)).toBe("&lt;&apos;&amp;&quot;&gt;");
  });
});

describe("side-by-side report", () => {
  const cell = (mode: string, services: number, k: number) => ({
    mode, services, target: "10.96.1.1", errors: [], wallSeconds: 1,
    programMs: 10 * k, changeMs: [k, 2 * k], rules: 100, bytes: 1000, changeBytes: 100,
    tcp1: { streams: 1, seconds: 1, gbps: 10 / k, retransmits: 0 }, tcp4: { streams: 4, seconds: 1, gbps: 12 / k, retransmits: 0 },
    udp: { sender: "udpblast (C, sendmmsg)", flows: 4, payload: 64, seconds: 1, sentPerSec: 1e6, receivedPerSec: 5e5 / k, sendErrors: 0 },
    conn: { client: "tcpconnect (C)", seconds: 1, connects: 1000, failures: 0, perSec: 1000, p50: 30 * k, p90: 40, p99: 50, mean: 31 },
    ...(mode === "tapvip" ? { agent: { startMs: 1, firstSyncMs: 10 * k, args: [] }, store: { loadMs: 1, startToReadyMs: 5, syncMs: 4, commitMs: [1], timeouts: 0 } } : {}),
  });
  const modes = ["none", "iptables-legacy", "iptables-nft", "nftables", "tapvip"] as const;
  const r = {
    machine: { cpu: "cpu", cores: 2, kernel: "6", node: "v20", memGiB: 1, loadStart: [0.1, 0.1, 0.1], date: "d" },
    loadEnd: [0.1, 0.1, 0.1], busyShare: 0.5, wallSeconds: 10, command: "npm run bench:side",
    options: { services: [10, 10000], modes: [...modes], quick: false, tcpSeconds: 1, udpSeconds: 1, connSeconds: 1, changes: 2, udpFlows: 4, udpPayload: 64, connectNode: false, tapvipArgs: [], write: true },
    tools: { iptables: "iptables v1.8.9 (nf_tables)" }, skipped: [],
    cells: modes.flatMap((m, i) => [cell(m, 10, i + 1), cell(m, 10000, i + 1)]),
  } as unknown as Report;

  it("renders one well-formed plot per metric and a section with every metric's table and the targets", () => {
    const plots = renderPlots(r);
    expect(Object.keys(plots).sort()).toEqual(METRICS.map((m) => `${m.id}.svg`).sort());
    for (const [f, svg] of Object.entries(plots)) expect(wellFormed(svg), f).toBeNull();
    const md = renderReport(r);
    expect(md.startsWith("## ")).toBe(true);
    expect(md).not.toMatch(/^# /m);
    for (const m of METRICS) expect(md).toContain(`(plots/${m.id}.svg)`);
    expect(md).toContain("IPVS");
    expect(md).toContain("| tapvip ÷ … |");
    const t = evaluateTargets(r);
    expect(t.find((x) => x.target.startsWith("≥ 400k"))!.verdict).toBe("not met"); // 100k/s
    expect(t.find((x) => x.target.startsWith("new-connection p50"))!.verdict).toBe("met"); // 150 ≤ 1.5 × 120
    expect(t.find((x) => x.target.startsWith("…and flat"))!.verdict).toBe("met");
  });
});
