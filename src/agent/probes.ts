// Readiness probes for the pods of this node (the kubelet's prober, for the parts Services
// need): every container of a Pod with spec.nodeName == this node that declares a
// readinessProbe (httpGet or tcpSocket) is probed against status.podIP from the agent's own
// network namespace, every periodSeconds, each attempt bounded by timeoutSeconds. After
// successThreshold consecutive successes the container is ready, after failureThreshold
// consecutive failures it is not. The Pod's Ready and ContainersReady conditions (and
// containerStatuses[].ready of probed containers) follow: Ready = every probed container ready.
//
// Writes go through a PodStatusWriter, only on a transition: when the probes' verdict differs
// from the Pod's current Ready condition. Until a probe has decided (initialDelaySeconds, the
// first thresholds) the condition is left as it is, so a restarted agent does not flap pods
// that are serving. Pods without readiness probes are never touched; exec and grpc probes are
// not supported (logged once, the container counts as having no probe).
//
// Pods are read through list+watch (an Informer over any ObjectSource). A status write comes
// back as a MODIFIED event; workers restart only when the probe-relevant parts change
// (podIP, containers' probes and ports).

import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import type { ObjectSource } from "../store/watch.js";
import type { Pod, Container, PodCondition } from "../store/types.js";
import { Informer, type Obj } from "./informer.js";

// ------------------------------------------------------------------------------ probe specs

export interface HTTPGetAction {
  path?: string;
  port: number | string;
  host?: string;
  scheme?: "HTTP" | "HTTPS";
  httpHeaders?: Array<{ name: string; value: string }>;
}

export interface Probe {
  httpGet?: HTTPGetAction;
  tcpSocket?: { port: number | string; host?: string };
  exec?: unknown;
  grpc?: unknown;
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export interface ProbeResult {
  ok: boolean;
  message: string;
}

/** A probe's port: a number, or the name of one of the container's ports. */
export function resolvePort(port: number | string | undefined, container: Container): number | undefined {
  if (typeof port === "number") return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
  if (typeof port !== "string" || port === "") return undefined;
  if (/^\d+$/.test(port)) return resolvePort(Number(port), container);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** One attempt of an httpGet or tcpSocket probe against `podIP`. Never rejects. */
export function runProbe(probe: Probe, container: Container, podIP: string, timeoutMs: number): Promise<ProbeResult> {
  if (probe.httpGet) {
    const g = probe.httpGet;
    const port = resolvePort(g.port, container);
    if (port === undefined) return Promise.resolve({ ok: false, message: `httpGet: port ${JSON.stringify(g.port)} does not name a port of container ${container.name}` });
    return httpProbe(g, g.host || podIP, port, timeoutMs);
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, container);
    if (port === undefined) return Promise.resolve({ ok: false, message: `tcpSocket: port ${JSON.stringify(probe.tcpSocket.port)} does not name a port of container ${container.name}` });
    return tcpProbe(probe.tcpSocket.host || podIP, port, timeoutMs);
  }
  return Promise.resolve({ ok: false, message: "unsupported probe" });
}

function httpProbe(g: HTTPGetAction, host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const headers: Record<string, string> = { "User-Agent": "kube-probe/1.30", Accept: "*/*", Connection: "close" };
    for (const h of g.httpHeaders ?? []) headers[h.name] = h.value;
    const https = (g.scheme ?? "HTTP").toUpperCase() === "HTTPS";
    let path = g.path ?? "/";
    if (!path.startsWith("/")) path = `/${path}`;
    const opts = { host, port, path, method: "GET", headers, agent: false as const, ...(https ? { rejectUnauthorized: false } : {}) };
    const onRes = (res: IncomingMessage) => {
      const code = res.statusCode ?? 0;
      res.resume(); // the body is not read
      finish(code >= 200 && code < 400 ? { ok: true, message: `HTTP ${code}` } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` });
    };
    const req = https ? httpsRequest(opts, onRes) : httpRequest(opts, onRes);
    const timer = setTimeout(() => finish({ ok: false, message: `Get "${https ? "https" : "http"}://${host}:${port}${path}": timeout after ${timeoutMs} ms` }), timeoutMs);
    req.on("error", (e) => finish({ ok: false, message: `Get "http://${host}:${port}${path}": ${(e as NodeJS.ErrnoException).code ?? e.message}` }));
    req.end();
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    const sock = connect({ host, port });
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, message: `dial tcp ${host}:${port}: timeout after ${timeoutMs} ms` }), timeoutMs);
    sock.on("connect", () => finish({ ok: true, message: "connected" }));
    sock.on("error", (e) => finish({ ok: false, message: `dial tcp ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}` }));
  });
}

// ------------------------------------------------------------------------------ status writer

/** Applies `mutate` to the Pod's latest version and writes its status; mutate returns false for "no change". */
export interface PodStatusWriter {
  updatePodStatus(namespace: string, name: string, mutate: (pod: Pod) => boolean): Promise<void>;
}

/** What the Registry and the ApiClient both offer (sync or async). */
export interface PodApi {
  get(kind: string, namespace: string | undefined, name: string): unknown;
  update(kind: string, obj: never, opts: { namespace?: string; subresource?: "status" }): unknown;
}

/** A PodStatusWriter over the Registry or the ApiClient: get, mutate, update status, retry on 409. */
export function podStatusWriter(api: PodApi, retries = 5): PodStatusWriter {
  return {
    async updatePodStatus(namespace, name, mutate) {
      for (let attempt = 0; ; attempt++) {
        let pod: Pod;
        try {
          pod = structuredClone(await api.get("Pod", namespace, name)) as Pod;
        } catch (e) {
          if ((e as { code?: number }).code === 404) return; // gone: nothing to report
          throw e;
        }
        if (!mutate(pod)) return;
        try {
          await api.update("Pod", pod as never, { namespace, subresource: "status" });
          return;
        } catch (e) {
          const code = (e as { code?: number }).code;
          if (code === 404) return;
          if (code !== 409 || attempt >= retries) throw e;
        }
      }
    },
  };
}

/** The Pod's Ready condition: true, false, or undefined (absent/Unknown). */
export function podReadyCondition(pod: Pod): boolean | undefined {
  const c = pod.status?.conditions?.find((x) => x?.type === "Ready");
  return c?.status === "True" ? true : c?.status === "False" ? false : undefined;
}

/**
 * Sets Ready and ContainersReady to `ready` and the probed containers' containerStatuses[].ready;
 * returns whether anything changed.
 */
export function setPodReady(pod: Pod, ready: boolean, containers: Map<string, boolean | undefined>, at: Date, message?: string): boolean {
  pod.status ??= {};
  const conds: PodCondition[] = (pod.status.conditions ??= []);
  let changed = false;
  const want = ready ? "True" : "False";
  for (const type of ["Ready", "ContainersReady"]) {
    const c = conds.find((x) => x.type === type);
    const reason = ready ? undefined : "ContainersNotReady";
    if (!c) {
      conds.push({ type, status: want, lastTransitionTime: at.toISOString(), ...(reason ? { reason, message } : {}) });
      changed = true;
    } else if (c.status !== want) {
      c.status = want;
      c.lastTransitionTime = at.toISOString();
      if (reason) {
        c.reason = reason;
        if (message) c.message = message;
      } else {
        delete c.reason;
        delete c.message;
      }
      changed = true;
    }
  }
  const statuses = pod.status.containerStatuses as Array<{ name: string; ready?: boolean }> | undefined;
  if (Array.isArray(statuses)) {
    for (const s of statuses) {
      const r = containers.get(s?.name);
      if (r !== undefined && s.ready !== r) {
        s.ready = r;
        changed = true;
      }
    }
  }
  return changed;
}

// ------------------------------------------------------------------------------ the prober

export interface ReadinessProberOptions {
  nodeName: string;
  source: ObjectSource;
  writer: PodStatusWriter;
  /** Multiplies every probe duration (tests: 0.1 makes periodSeconds 1 last 100 ms). Default 1. */
  timeScale?: number;
  log?: (line: string) => void;
  clock?: () => Date;
}

interface Worker {
  container: Container;
  probe: Required<Pick<Probe, "periodSeconds" | "timeoutSeconds" | "successThreshold" | "failureThreshold" | "initialDelaySeconds">> & Probe;
  result: boolean | undefined;
  successes: number;
  failures: number;
  lastMessage: string;
  timer: NodeJS.Timeout | null;
  running: boolean;
}

interface PodState {
  ns: string;
  name: string;
  fingerprint: string;
  pod: Pod;
  workers: Map<string, Worker>;
  writing: Promise<void>;
  stopped: boolean;
}

const int = (v: unknown, def: number, min: number) => (typeof v === "number" && Number.isFinite(v) && v >= min ? v : def);

/** The probes of one pod's containers (only httpGet and tcpSocket; defaults applied). */
function probesOf(pod: Pod, log: (l: string) => void, warned: Set<string>): Array<{ container: Container; probe: Worker["probe"] }> {
  const out: Array<{ container: Container; probe: Worker["probe"] }> = [];
  for (const c of pod.spec?.containers ?? []) {
    const p = c.readinessProbe as Probe | undefined;
    if (!p || typeof p !== "object") continue;
    if (!p.httpGet && !p.tcpSocket) {
      const k = `${pod.metadata.namespace}/${pod.metadata.name}/${c.name}`;
      if (!warned.has(k)) {
        warned.add(k);
        log(`probes: ${k}: only httpGet and tcpSocket readiness probes are supported; the container is treated as having none`);
      }
      continue;
    }
    out.push({
      container: c,
      probe: {
        ...p,
        initialDelaySeconds: int(p.initialDelaySeconds, 0, 0),
        periodSeconds: int(p.periodSeconds, 10, 0.001),
        timeoutSeconds: int(p.timeoutSeconds, 1, 0.001),
        successThreshold: Math.floor(int(p.successThreshold, 1, 1)),
        failureThreshold: Math.floor(int(p.failureThreshold, 3, 1)),
      },
    });
  }
  return out;
}

export class ReadinessProber {
  private readonly pods = new Map<string, PodState>();
  private readonly informer: Informer;
  private readonly scale: number;
  private readonly log: (l: string) => void;
  private readonly clock: () => Date;
  private readonly warned = new Set<string>();
  private stopped = false;
  /** Status writes made (for tests and metrics). */
  writes = 0;

  constructor(private readonly opts: ReadinessProberOptions) {
    this.scale = opts.timeScale ?? 1;
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.clock = opts.clock ?? (() => new Date());
    this.informer = new Informer(opts.source, "Pod", {
      onChange: (_old, cur) => this.onPod(_old, cur),
      onError: (e) => this.log(`probes: listing pods: ${(e as Error).message ?? e}`),
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
  }

  stop(): void {
    this.stopped = true;
    this.informer.stop();
    for (const k of [...this.pods.keys()]) this.drop(k);
  }

  /** Per probed container: its current verdict (undefined = not decided yet). */
  status(): Array<{ pod: string; container: string; ready: boolean | undefined; message: string }> {
    const out = [];
    for (const [k, s] of this.pods) for (const [c, w] of s.workers) out.push({ pod: k, container: c, ready: w.result, message: w.lastMessage });
    return out;
  }

  private onPod(old: Obj | undefined, cur: Obj | undefined): void {
    const key = `${(cur ?? old)!.metadata.namespace ?? ""}/${(cur ?? old)!.metadata.name ?? ""}`;
    const pod = cur as unknown as Pod | undefined;
    const mine = pod && pod.spec?.nodeName === this.opts.nodeName && pod.status?.phase !== "Succeeded" && pod.status?.phase !== "Failed";
    const podIP = pod?.status?.podIP;
    const probes = mine && podIP ? probesOf(pod!, this.log, this.warned) : [];
    if (!pod || probes.length === 0) {
      this.drop(key);
      return;
    }
    const fingerprint = JSON.stringify([pod.metadata.uid, podIP, probes.map((p) => [p.container.name, p.probe, p.container.ports ?? []])]);
    const st = this.pods.get(key);
    if (st && st.fingerprint === fingerprint) {
      st.pod = pod; // a status write or an unrelated change: keep probing
      return;
    }
    this.drop(key);
    const s: PodState = { ns: pod.metadata.namespace ?? "default", name: pod.metadata.name ?? "", fingerprint, pod, workers: new Map(), writing: Promise.resolve(), stopped: false };
    this.pods.set(key, s);
    for (const { container, probe } of probes) {
      const w: Worker = { container, probe, result: undefined, successes: 0, failures: 0, lastMessage: "", timer: null, running: false };
      s.workers.set(container.name, w);
      this.schedule(s, w, probe.initialDelaySeconds);
    }
  }

  private drop(key: string): void {
    const s = this.pods.get(key);
    if (!s) return;
    s.stopped = true;
    for (const w of s.workers.values()) if (w.timer) clearTimeout(w.timer);
    this.pods.delete(key);
  }

  private ms(seconds: number): number {
    return Math.max(1, Math.round(seconds * 1000 * this.scale));
  }

  private schedule(s: PodState, w: Worker, seconds: number): void {
    if (s.stopped || this.stopped) return;
    w.timer = setTimeout(() => void this.tick(s, w), this.ms(seconds));
    w.timer.unref();
  }

  private async tick(s: PodState, w: Worker): Promise<void> {
    w.timer = null;
    if (s.stopped) return;
    const started = Date.now();
    const r = await runProbe(w.probe, w.container, s.pod.status!.podIP!, this.ms(w.probe.timeoutSeconds));
    if (s.stopped) return;
    w.lastMessage = r.message;
    if (r.ok) {
      w.successes++;
      w.failures = 0;
      if (w.successes >= w.probe.successThreshold) w.result = true;
    } else {
      w.failures++;
      w.successes = 0;
      if (w.failures >= w.probe.failureThreshold) {
        if (w.result !== false) this.log(`probes: ${s.ns}/${s.name} container ${w.container.name}: readiness probe failed: ${r.message}`);
        w.result = false;
      }
    }
    this.reconcile(s);
    // The period runs from the start of an attempt, as the kubelet's ticker does.
    this.schedule(s, w, Math.max(0, w.probe.periodSeconds - (Date.now() - started) / 1000 / this.scale));
  }

  /** The probes' verdict for the pod: false if any container failed, true once all succeeded. */
  private verdict(s: PodState): boolean | undefined {
    let all = true;
    for (const w of s.workers.values()) {
      if (w.result === false) return false;
      if (w.result !== true) all = false;
    }
    return all ? true : undefined;
  }

  private reconcile(s: PodState): void {
    const want = this.verdict(s);
    if (want === undefined || podReadyCondition(s.pod) === want) return;
    s.writing = s.writing.then(async () => {
      const w2 = this.verdict(s);
      if (s.stopped || w2 === undefined || podReadyCondition(s.pod) === w2) return;
      const results = new Map([...s.workers].map(([n, w]) => [n, w.result]));
      const failing = [...s.workers.values()].filter((w) => w.result === false).map((w) => w.container.name);
      const message = failing.length ? `containers with unready status: [${failing.join(" ")}]` : undefined;
      let wrote = false;
      try {
        await this.opts.writer.updatePodStatus(s.ns, s.name, (pod) => {
          wrote = setPodReady(pod, w2, results, this.clock(), message);
          return wrote;
        });
        if (wrote) {
          this.writes++;
          // Until the watch delivers the write, remember it so the next probe does not repeat it.
          s.pod = structuredClone(s.pod);
          setPodReady(s.pod, w2, results, this.clock(), message);
          this.log(`probes: ${s.ns}/${s.name}: Ready=${w2 ? "True" : "False"}`);
        }
      } catch (e) {
        this.log(`probes: ${s.ns}/${s.name}: writing status: ${(e as Error).message}`);
      }
    });
  }
}
