// Validation of Services, Endpoints, EndpointSlices and Namespaces with upstream Kubernetes rules
// and messages (pkg/apis/core/validation, pkg/apis/discovery/validation, apimachinery's
// field errors), and the 422 `Status` built from the resulting causes.

import { isHeadless, externallyAccessible, needsHealthCheck, MAX_CLIENT_IP_SERVICE_AFFINITY_SECONDS } from "./defaults.js";
import {
  isLinkLocalMulticast,
  isLinkLocalUnicast,
  isLoopback,
  isUnspecified,
  parseCIDR,
  parseIP,
} from "./net.js";
import type {
  CauseType,
  EndpointSlice,
  Endpoints,
  Namespace,
  ObjectMeta,
  Service,
  ServicePort,
  Status,
} from "./types.js";

// ------------------------------------------------------------------ field errors

export type FieldErrorType = CauseType;

/** One validation failure, in upstream field.Error form. */
export interface FieldError {
  /** Field path, e.g. `spec.ports[0].port`. */
  field: string;
  type: FieldErrorType;
  /** Full upstream form: `<field>: <body>`, e.g. `spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`. */
  message: string;
  /** The message without the field path (upstream ErrorBody, used for Status causes). */
  body: string;
  /** The detail text alone (may be empty). */
  detail: string;
}

/** A value rendered verbatim in messages (for Go-syntax representations of structs). */
export class GoRepr {
  constructor(readonly repr: string) {}
}

function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** Renders a bad value the way apimachinery's field.Error does (Go %v / %q / %#v). */
export function formatBadValue(v: unknown): string {
  if (v instanceof GoRepr) return v.repr;
  if (v === null || v === undefined) return "null";
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (typeof v === "string") return goQuote(v);
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) {
    return `[]string{${v.map((x) => goQuote(x as string)).join(", ")}}`;
  }
  return JSON.stringify(v);
}

const TYPE_TEXT: Record<FieldErrorType, string> = {
  FieldValueRequired: "Required value",
  FieldValueInvalid: "Invalid value",
  FieldValueForbidden: "Forbidden",
  FieldValueDuplicate: "Duplicate value",
  FieldValueNotSupported: "Unsupported value",
  FieldValueTooMany: "Too many",
  FieldValueTooLong: "Too long",
  InternalError: "Internal error",
};

function makeError(field: string, type: FieldErrorType, detail: string, value?: { v: unknown }): FieldError {
  let body = TYPE_TEXT[type];
  if (value) body += `: ${formatBadValue(value.v)}`;
  if (detail) body += `: ${detail}`;
  return { field, type, message: `${field}: ${body}`, body, detail };
}

export const fieldErrors = {
  required: (field: string, detail = ""): FieldError => makeError(field, "FieldValueRequired", detail),
  forbidden: (field: string, detail: string): FieldError => makeError(field, "FieldValueForbidden", detail),
  invalid: (field: string, value: unknown, detail: string): FieldError =>
    makeError(field, "FieldValueInvalid", detail, { v: value }),
  duplicate: (field: string, value: unknown): FieldError => makeError(field, "FieldValueDuplicate", "", { v: value }),
  notSupported: (field: string, value: unknown, valid: readonly string[]): FieldError =>
    makeError(
      field,
      "FieldValueNotSupported",
      valid.length ? `supported values: ${valid.map(goQuote).join(", ")}` : "",
      { v: value },
    ),
  tooMany: (field: string, actual: number, max: number): FieldError =>
    makeError(field, "FieldValueTooMany", `must have at most ${max} items`, { v: actual }),
};
const E = fieldErrors;

/** apimachinery's aggregate text: one message alone, else `[a, b]` with duplicates removed. */
export function aggregateMessage(errs: readonly FieldError[]): string {
  const seen: string[] = [];
  for (const e of errs) if (!seen.includes(e.message)) seen.push(e.message);
  if (seen.length === 1) return seen[0]!;
  return `[${seen.join(", ")}]`;
}

const KIND_GROUPS: Record<string, string> = { EndpointSlice: "discovery.k8s.io" };

/**
 * The 422 Status upstream returns for an invalid object: message
 * `<Kind> "<name>" is invalid: <causes>`, reason Invalid, details.causes per field error.
 */
export function invalidStatus(kind: string, name: string, causes: readonly FieldError[]): Status {
  const group = KIND_GROUPS[kind];
  const qualified = group ? `${kind}.${group}` : kind;
  const details: Status["details"] = { name, kind };
  if (group) details.group = group;
  details.causes = causes.map((c) => ({ reason: c.type, message: c.body, field: c.field }));
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `${qualified} ${goQuote(name)} is invalid: ${aggregateMessage(causes)}`,
    reason: "Invalid",
    details,
    code: 422,
  };
}

// ------------------------------------------------------------------ string format checks (return messages)

const DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

const DNS1123_LABEL_RE = new RegExp(`^${DNS1123_LABEL_FMT}$`);
const DNS1123_SUBDOMAIN_RE = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);
const DNS1035_LABEL_RE = new RegExp(`^${DNS1035_LABEL_FMT}$`);
const QUALIFIED_NAME_RE = new RegExp(`^${QUALIFIED_NAME_FMT}$`);
const LABEL_VALUE_RE = new RegExp(`^${LABEL_VALUE_FMT}$`);

function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  let out = `${msg} (e.g. `;
  examples.forEach((ex, i) => {
    if (i > 0) out += " or ";
    out += `'${ex}', `;
  });
  return `${out}regex used for validation is '${fmt}')`;
}

const maxLenError = (n: number): string => `must be no more than ${n} characters`;

export function isDNS1123Label(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLenError(63));
  if (!DNS1123_LABEL_RE.test(v)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        DNS1123_LABEL_FMT,
        "my-name",
        "123-abc",
      ),
    );
  }
  return errs;
}

export function isDNS1123Subdomain(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push(maxLenError(253));
  if (!DNS1123_SUBDOMAIN_RE.test(v)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        DNS1123_SUBDOMAIN_FMT,
        "example.com",
      ),
    );
  }
  return errs;
}

export function isDNS1035Label(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLenError(63));
  if (!DNS1035_LABEL_RE.test(v)) {
    errs.push(
      regexError(
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        DNS1035_LABEL_FMT,
        "my-name",
        "abc-123",
      ),
    );
  }
  return errs;
}

const QUALIFIED_NAME_MSG =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

export function isQualifiedName(v: string): string[] {
  const errs: string[] = [];
  const parts = v.split("/");
  let name: string;
  if (parts.length === 1) {
    name = parts[0]!;
  } else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errs.push("prefix part must be non-empty");
    else for (const m of isDNS1123Subdomain(prefix)) errs.push(`prefix part ${m}`);
  } else {
    return [
      `a qualified name ${regexError(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name.length === 0) errs.push("name part must be non-empty");
  else if (name.length > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!QUALIFIED_NAME_RE.test(name)) {
    errs.push(`name part ${regexError(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")}`);
  }
  return errs;
}

export function isValidLabelValue(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLenError(63));
  if (!LABEL_VALUE_RE.test(v)) {
    errs.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        LABEL_VALUE_FMT,
        "MyValue",
        "my_value",
        "12345",
      ),
    );
  }
  return errs;
}

export function isValidPortNum(p: unknown): string[] {
  if (typeof p === "number" && Number.isInteger(p) && p >= 1 && p <= 65535) return [];
  return ["must be between 1 and 65535, inclusive"];
}

/** IANA_SVC_NAME: ≤15 chars, a-z0-9 and '-', at least one letter, no '--', no edge '-'. */
export function isValidPortName(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 15) errs.push(maxLenError(15));
  if (!/^[-a-z0-9]+$/.test(v)) errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (!/[a-z]/.test(v)) errs.push("must contain at least one letter (a-z)");
  if (v.includes("--")) errs.push("must not contain consecutive hyphens");
  if (v.length > 0 && (v.startsWith("-") || v.endsWith("-"))) errs.push("must not begin or end with a hyphen");
  return errs;
}

// ------------------------------------------------------------------ field-level helpers (return FieldErrors)

const str = (v: unknown): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));

function eachMsg(field: string, value: unknown, msgs: string[]): FieldError[] {
  return msgs.map((m) => E.invalid(field, value, m));
}

export function validateDNS1123Label(v: string, field: string): FieldError[] {
  return eachMsg(field, v, isDNS1123Label(v));
}

export function validateDNS1123Subdomain(v: string, field: string): FieldError[] {
  return eachMsg(field, v, isDNS1123Subdomain(v));
}

export function validateQualifiedName(v: string, field: string): FieldError[] {
  return eachMsg(field, v, isQualifiedName(v));
}

export function isValidIP(field: string, value: unknown): FieldError[] {
  if (parseIP(value)) return [];
  return [E.invalid(field, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")];
}

export function isValidCIDR(field: string, value: string): FieldError[] {
  if (parseCIDR(value)) return [];
  return [E.invalid(field, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")];
}

/** Rejects unspecified, loopback, link-local and link-local multicast addresses. */
export function validateNonSpecialIP(value: string, field: string): FieldError[] {
  const ip = parseIP(value);
  if (!ip) return [E.invalid(field, value, "must be a valid IP address")];
  const errs: FieldError[] = [];
  if (isUnspecified(ip)) errs.push(E.invalid(field, value, `may not be unspecified (${value})`));
  if (isLoopback(ip)) errs.push(E.invalid(field, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
  if (isLinkLocalUnicast(ip)) errs.push(E.invalid(field, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
  if (isLinkLocalMulticast(ip)) {
    errs.push(E.invalid(field, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"));
  }
  return errs;
}

export function validateLabels(labels: unknown, field: string): FieldError[] {
  const errs: FieldError[] = [];
  if (labels === undefined || labels === null) return errs;
  if (typeof labels !== "object" || Array.isArray(labels)) return [E.invalid(field, labels, "must be a map of strings")];
  for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
    errs.push(...eachMsg(field, k, isQualifiedName(k)));
    if (typeof v !== "string") errs.push(E.invalid(field, v, "must be a string"));
    else errs.push(...eachMsg(field, v, isValidLabelValue(v)));
  }
  return errs;
}

const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

export function validateAnnotations(annotations: unknown, field: string): FieldError[] {
  const errs: FieldError[] = [];
  if (annotations === undefined || annotations === null) return errs;
  if (typeof annotations !== "object" || Array.isArray(annotations)) {
    return [E.invalid(field, annotations, "must be a map of strings")];
  }
  let total = 0;
  for (const [k, v] of Object.entries(annotations as Record<string, unknown>)) {
    errs.push(...eachMsg(field, k, isQualifiedName(k.toLowerCase())));
    total += k.length + str(v).length;
  }
  if (total > TOTAL_ANNOTATION_SIZE_LIMIT) {
    errs.push(makeError(field, "FieldValueTooLong", `may not be more than ${TOTAL_ANNOTATION_SIZE_LIMIT} bytes`));
  }
  return errs;
}

type NameCheck = (name: string) => string[];

/** ValidateObjectMeta: name (or generateName) required and well-formed, namespace rules, labels, annotations. */
export function validateObjectMeta(meta: ObjectMeta | undefined, namespaced: boolean, nameCheck: NameCheck, path = "metadata"): FieldError[] {
  const m: ObjectMeta = meta && typeof meta === "object" ? meta : {};
  const errs: FieldError[] = [];
  const name = str(m.name);
  if (name === "") {
    if (!m.generateName) errs.push(E.required(`${path}.name`, "name or generateName is required"));
  } else {
    errs.push(...eachMsg(`${path}.name`, name, nameCheck(name)));
  }
  const ns = str(m.namespace);
  if (namespaced) {
    if (ns === "") errs.push(E.required(`${path}.namespace`));
    else errs.push(...eachMsg(`${path}.namespace`, ns, isDNS1123Label(ns)));
  } else if (ns !== "") {
    errs.push(E.forbidden(`${path}.namespace`, "not allowed on this type"));
  }
  errs.push(...validateLabels(m.labels, `${path}.labels`));
  errs.push(...validateAnnotations(m.annotations, `${path}.annotations`));
  return errs;
}

/** ValidateObjectMetaUpdate: name and namespace may not change. */
export function validateObjectMetaUpdate(meta: ObjectMeta | undefined, old: ObjectMeta | undefined, path = "metadata"): FieldError[] {
  const errs: FieldError[] = [];
  const n = str(meta?.name);
  const o = str(old?.name);
  if (n !== o) errs.push(E.invalid(`${path}.name`, n, "field is immutable"));
  const nn = str(meta?.namespace);
  const on = str(old?.namespace);
  if (nn !== on) errs.push(E.invalid(`${path}.namespace`, nn, "field is immutable"));
  return errs;
}

// ------------------------------------------------------------------ Service

const SUPPORTED_PROTOCOLS = ["SCTP", "TCP", "UDP"] as const;
const SUPPORTED_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"] as const;
const SUPPORTED_AFFINITY = ["ClientIP", "None"] as const;
const SUPPORTED_TRAFFIC_POLICIES = ["Cluster", "Local"] as const;
const SUPPORTED_IP_FAMILIES = ["IPv4", "IPv6"] as const;
const SUPPORTED_IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"] as const;
const SUPPORTED_TRAFFIC_DISTRIBUTION = ["PreferClose", "PreferSameNode", "PreferSameZone"] as const;
const LB_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges";

const has = (list: readonly string[], v: unknown): boolean => typeof v === "string" && list.includes(v);

export interface ServiceValidationOptions {
  /**
   * Set when the object has been through IP/port allocation (upstream validates after the
   * registry allocates): a LoadBalancer+Local service must then carry a healthCheckNodePort.
   * Before allocation the missing value is not an error (it is about to be allocated).
   */
  allocated?: boolean;
}

function servicePortRepr(protocol: unknown, port: unknown): GoRepr {
  return new GoRepr(
    `core.ServicePort{Name:"", Protocol:${goQuote(str(protocol))}, AppProtocol:(*string)(nil), Port:${typeof port === "number" ? port : 0}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`,
  );
}

function validateServicePort(sp: ServicePort, requireName: boolean, names: Set<string>, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const name = str(sp.name);
  if (requireName && name === "") {
    errs.push(E.required(`${path}.name`));
  } else if (name !== "") {
    errs.push(...validateDNS1123Label(name, `${path}.name`));
    if (names.has(name)) errs.push(E.duplicate(`${path}.name`, name));
    else names.add(name);
  }
  for (const m of isValidPortNum(sp.port)) errs.push(E.invalid(`${path}.port`, sp.port ?? 0, m));
  if (!sp.protocol) errs.push(E.required(`${path}.protocol`));
  else if (!has(SUPPORTED_PROTOCOLS, sp.protocol)) errs.push(E.notSupported(`${path}.protocol`, sp.protocol, SUPPORTED_PROTOCOLS));
  errs.push(...validatePortNumOrName(sp.targetPort, `${path}.targetPort`));
  if (sp.appProtocol !== undefined && sp.appProtocol !== null) {
    errs.push(...validateQualifiedName(str(sp.appProtocol), `${path}.appProtocol`));
  }
  return errs;
}

/** targetPort: an integer 1..65535 or an IANA service name. */
export function validatePortNumOrName(v: unknown, field: string): FieldError[] {
  if (typeof v === "string") return eachMsg(field, v, isValidPortName(v));
  const n = v === undefined || v === null ? 0 : v;
  return eachMsg(field, n, isValidPortNum(n));
}

function validateClientIPAffinityConfig(svc: Service, path: string): FieldError[] {
  const cfg = svc.spec?.sessionAffinityConfig;
  const when = "when session affinity type is ClientIP";
  if (!cfg) return [E.required(path, when)];
  if (!cfg.clientIP) return [E.required(`${path}.clientIP`, when)];
  const t = cfg.clientIP.timeoutSeconds;
  if (t === undefined || t === null) return [E.required(`${path}.clientIP.timeoutSeconds`, when)];
  if (typeof t !== "number" || !Number.isInteger(t) || t <= 0 || t > MAX_CLIENT_IP_SERVICE_AFFINITY_SECONDS) {
    return [
      E.invalid(`${path}.clientIP.timeoutSeconds`, t, `must be greater than 0 and less than ${MAX_CLIENT_IP_SERVICE_AFFINITY_SECONDS}`),
    ];
  }
  return [];
}

/** clusterIP/clusterIPs/ipFamilies/ipFamilyPolicy consistency (skipped for ExternalName). */
export function validateServiceClusterIPsRelatedFields(svc: Service): FieldError[] {
  const spec = svc.spec ?? {};
  if (spec.type === "ExternalName") return [];
  const errs: FieldError[] = [];
  const ips = spec.clusterIPs ?? [];
  const cipsPath = "spec.clusterIPs";
  if (spec.clusterIP) {
    if (ips.length === 0) errs.push(E.required(cipsPath));
    else if (ips[0] !== spec.clusterIP) errs.push(E.invalid(cipsPath, ips, "first value must match `clusterIP`"));
  } else if (ips.length !== 0) {
    errs.push(E.invalid(cipsPath, ips, "must be empty when `clusterIP` is not specified"));
  }

  const seen = new Set<string>();
  (spec.ipFamilies ?? []).forEach((f, i) => {
    if (!has(SUPPORTED_IP_FAMILIES, f)) errs.push(E.notSupported(`spec.ipFamilies[${i}]`, f, SUPPORTED_IP_FAMILIES));
    if (seen.has(f)) errs.push(E.duplicate(`spec.ipFamilies[${i}]`, f));
    seen.add(f);
  });
  if (spec.ipFamilyPolicy !== undefined && spec.ipFamilyPolicy !== null && !has(SUPPORTED_IP_FAMILY_POLICIES, spec.ipFamilyPolicy)) {
    errs.push(E.notSupported("spec.ipFamilyPolicy", spec.ipFamilyPolicy, SUPPORTED_IP_FAMILY_POLICIES));
  }

  let hasInvalid = false;
  ips.forEach((ip, i) => {
    if (i === 0 && ip === "None") {
      if (ips.length > 1) {
        hasInvalid = true;
        errs.push(E.invalid(cipsPath, ips, "'None' must be the first and only value"));
      }
      return;
    }
    const e = isValidIP(`${cipsPath}[${i}]`, ip);
    if (e.length) hasInvalid = true;
    errs.push(...e);
  });
  if (ips.length > 2) errs.push(E.invalid(cipsPath, ips, "may only hold up to 2 values"));
  if (hasInvalid) return errs;

  if (ips.length > 1) {
    const fams = ips.map((ip) => parseIP(ip)!.family);
    const dual = ips.length === 2 && fams[0] !== fams[1];
    if (!dual) errs.push(E.invalid(cipsPath, ips, "may specify no more than one IP for each IP family"));
  }
  const families = spec.ipFamilies ?? [];
  if (!isHeadless(svc) && ips.length > 0 && families.length > 0) {
    ips.forEach((ip, i) => {
      if (i > families.length - 1) return;
      const fam = parseIP(ip)!.family;
      if (families[i] === "IPv4" && fam === 6) {
        errs.push(E.invalid(`${cipsPath}[${i}]`, ip, `expected an IPv4 value as indicated by \`ipFamilies[${i}]\``));
      }
      if (families[i] === "IPv6" && fam !== 6) {
        errs.push(E.invalid(`${cipsPath}[${i}]`, ip, `expected an IPv6 value as indicated by \`ipFamilies[${i}]\``));
      }
    });
  }
  return errs;
}

function validateLoadBalancerClass(svc: Service, old: Service | undefined): FieldError[] {
  const errs: FieldError[] = [];
  const spec = svc.spec ?? {};
  const cls = spec.loadBalancerClass;
  if (old && old.spec?.type === "LoadBalancer" && spec.type === "LoadBalancer") {
    if ((old.spec?.loadBalancerClass ?? null) !== (cls ?? null)) {
      errs.push(E.invalid("spec.loadBalancerClass", cls ?? null, "may not change once set"));
    }
  }
  if (spec.type === "LoadBalancer") {
    if (cls !== undefined && cls !== null) errs.push(...validateQualifiedName(str(cls), "spec.loadBalancerClass"));
  } else if (cls !== undefined && cls !== null) {
    errs.push(E.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"));
  }
  return errs;
}

function validateExternalTrafficPolicy(svc: Service, opts: ServiceValidationOptions): FieldError[] {
  const errs: FieldError[] = [];
  const spec = svc.spec ?? {};
  const etp = spec.externalTrafficPolicy;
  if (!externallyAccessible(svc)) {
    if (etp) errs.push(E.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"));
  } else if (!etp) {
    errs.push(E.required("spec.externalTrafficPolicy"));
  } else if (!has(SUPPORTED_TRAFFIC_POLICIES, etp)) {
    errs.push(E.notSupported("spec.externalTrafficPolicy", etp, SUPPORTED_TRAFFIC_POLICIES));
  }
  const hc = spec.healthCheckNodePort ?? 0;
  if (!needsHealthCheck(svc)) {
    if (hc !== 0) {
      errs.push(
        E.invalid("spec.healthCheckNodePort", hc, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"),
      );
    }
  } else if (hc === 0) {
    if (opts.allocated) errs.push(E.required("spec.healthCheckNodePort"));
  } else {
    for (const m of isValidPortNum(hc)) errs.push(E.invalid("spec.healthCheckNodePort", hc, m));
  }
  return errs;
}

function validateInternalTrafficPolicy(svc: Service): FieldError[] {
  const spec = svc.spec ?? {};
  const itp = spec.internalTrafficPolicy;
  if (itp === undefined || itp === null) {
    if (spec.type === "NodePort" || spec.type === "LoadBalancer" || spec.type === "ClusterIP") {
      return [E.required("spec.internalTrafficPolicy")];
    }
    return [];
  }
  if (!has(SUPPORTED_TRAFFIC_POLICIES, itp)) return [E.notSupported("spec.internalTrafficPolicy", itp, SUPPORTED_TRAFFIC_POLICIES)];
  return [];
}

function validateServiceUpdateOnly(svc: Service, old: Service): FieldError[] {
  const errs: FieldError[] = [];
  errs.push(...validateObjectMetaUpdate(svc.metadata, old.metadata));
  const spec = svc.spec ?? {};
  const os = old.spec ?? {};
  const ips = spec.clusterIPs ?? [];
  const oips = os.clusterIPs ?? [];

  // clusterIPs: immutable unless the type moves to/from ExternalName
  if (spec.type !== "ExternalName" && os.type !== "ExternalName" && !(isHeadless(svc) && isHeadless(old))) {
    if (oips.length === ips.length) {
      oips.forEach((ip, i) => {
        if (ip !== ips[i]) errs.push(E.invalid(`spec.clusterIPs[${i}]`, ips, "may not change once set"));
      });
    } else if (oips.length > ips.length) {
      if (ips.length === 0) errs.push(E.invalid("spec.clusterIPs[0]", ips, "primary clusterIP can not be unset"));
      if (oips.length > 0 && ips.length > 0 && ips[0] !== oips[0]) {
        errs.push(E.invalid("spec.clusterIPs[0]", ips, "may not change once set"));
      }
      if (ips.length === 1 && spec.ipFamilyPolicy !== "SingleStack") {
        errs.push(
          E.invalid("spec.ipFamilyPolicy", spec.ipFamilyPolicy ?? null, "must be set to 'SingleStack' when releasing the secondary clusterIP"),
        );
      }
    } else if (oips.length > 0 && ips[0] !== oips[0]) {
      errs.push(E.invalid("spec.clusterIPs[0]", ips, "may not change once set"));
    }
  }

  // ipFamilies: same rule (headless may change families)
  if (spec.type !== "ExternalName" && os.type !== "ExternalName" && isHeadless(svc) === isHeadless(old) && !isHeadless(svc)) {
    const fams = spec.ipFamilies ?? [];
    const ofams = os.ipFamilies ?? [];
    if (ofams.length === fams.length) {
      ofams.forEach((f, i) => {
        if (f !== fams[i]) errs.push(E.invalid("spec.ipFamilies[0]", fams, "may not change once set"));
      });
    } else if (ofams.length > fams.length) {
      if (ips.length === 0) errs.push(E.invalid("spec.ipFamilies[0]", fams, "primary ipFamily can not be unset"));
      if (fams.length > 0 && fams[0] !== ofams[0]) errs.push(E.invalid("spec.ipFamilies[0]", ips, "may not change once set"));
      if (fams.length === 1 && spec.ipFamilyPolicy !== "SingleStack") {
        errs.push(
          E.invalid("spec.ipFamilyPolicy", spec.ipFamilyPolicy ?? null, "must be set to 'SingleStack' when releasing the secondary ipFamily"),
        );
      }
    } else if (ofams.length > 0 && fams.length > 0 && fams[0] !== ofams[0]) {
      errs.push(E.invalid("spec.ipFamilies[0]", ips, "may not change once set"));
    }
  }

  // healthCheckNodePort is immutable while both old and new need one
  if (needsHealthCheck(old) && needsHealthCheck(svc) && (spec.healthCheckNodePort ?? 0) !== (os.healthCheckNodePort ?? 0)) {
    errs.push(E.forbidden("spec.healthCheckNodePort", "field is immutable"));
  }
  return errs;
}

/**
 * ValidateService / ValidateServiceUpdate (when `old` is given). Expects a defaulted object
 * (see defaultService), as upstream validates after defaulting.
 */
export function validateService(svc: Service, old?: Service, opts: ServiceValidationOptions = {}): FieldError[] {
  const errs: FieldError[] = [];
  if (old) {
    errs.push(...validateServiceUpdateOnly(svc, old));
    errs.push(...validateLoadBalancerClass(svc, old).filter((e) => e.detail === "may not change once set"));
  }
  errs.push(...validateObjectMeta(svc.metadata, true, isDNS1035Label));
  const spec = svc.spec ?? {};
  const ports = Array.isArray(spec.ports) ? spec.ports : [];
  const headless = isHeadless(svc);

  if (ports.length === 0 && !headless && spec.type !== "ExternalName") errs.push(E.required("spec.ports"));
  switch (spec.type) {
    case "LoadBalancer":
      if (headless) errs.push(E.invalid("spec.clusterIPs[0]", spec.clusterIPs?.[0] ?? "None", "may not be set to 'None' for LoadBalancer services"));
      break;
    case "NodePort":
      if (headless) errs.push(E.invalid("spec.clusterIPs[0]", spec.clusterIPs?.[0] ?? "None", "may not be set to 'None' for NodePort services"));
      break;
    case "ExternalName": {
      if ((spec.clusterIPs?.length ?? 0) > 0 || spec.clusterIP) {
        errs.push(E.forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
      }
      if ((spec.ipFamilies?.length ?? 0) > 0) errs.push(E.forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
      if (spec.ipFamilyPolicy !== undefined && spec.ipFamilyPolicy !== null) {
        errs.push(E.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
      }
      const cname = str(spec.externalName).replace(/\.$/, "");
      if (cname.length > 0) errs.push(...validateDNS1123Subdomain(cname, "spec.externalName"));
      else errs.push(E.required("spec.externalName"));
      break;
    }
  }

  const names = new Set<string>();
  ports.forEach((p, i) => {
    errs.push(...validateServicePort((p ?? {}) as ServicePort, ports.length > 1, names, `spec.ports[${i}]`));
  });

  if (spec.selector !== undefined && spec.selector !== null) errs.push(...validateLabels(spec.selector, "spec.selector"));

  if (!spec.sessionAffinity) errs.push(E.required("spec.sessionAffinity"));
  else if (!has(SUPPORTED_AFFINITY, spec.sessionAffinity)) {
    errs.push(E.notSupported("spec.sessionAffinity", spec.sessionAffinity, SUPPORTED_AFFINITY));
  }
  if (spec.sessionAffinity === "ClientIP") {
    errs.push(...validateClientIPAffinityConfig(svc, "spec.sessionAffinityConfig"));
  } else if (spec.sessionAffinity === "None" && spec.sessionAffinityConfig !== undefined && spec.sessionAffinityConfig !== null) {
    errs.push(E.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
  }

  errs.push(...validateServiceClusterIPsRelatedFields(svc));

  (spec.externalIPs ?? []).forEach((ip, i) => {
    const path = `spec.externalIPs[${i}]`;
    const e = isValidIP(path, ip);
    errs.push(...(e.length ? e : validateNonSpecialIP(ip, path)));
  });

  if (!spec.type) errs.push(E.required("spec.type"));
  else if (!has(SUPPORTED_SERVICE_TYPES, spec.type)) errs.push(E.notSupported("spec.type", spec.type, SUPPORTED_SERVICE_TYPES));

  if (spec.type === "ClusterIP") {
    ports.forEach((p, i) => {
      if (p?.nodePort) errs.push(E.forbidden(`spec.ports[${i}].nodePort`, "may not be used when `type` is 'ClusterIP'"));
    });
  }

  const nodePortKeys = new Set<string>();
  ports.forEach((p, i) => {
    if (!p?.nodePort) return;
    const key = `${str(p.protocol)}/${p.nodePort}`;
    if (nodePortKeys.has(key)) errs.push(E.duplicate(`spec.ports[${i}].nodePort`, p.nodePort));
    nodePortKeys.add(key);
  });
  const portKeys = new Set<string>();
  ports.forEach((p, i) => {
    const key = `${str(p?.protocol)}/${str(p?.port)}`;
    if (portKeys.has(key)) errs.push(E.duplicate(`spec.ports[${i}]`, servicePortRepr(p?.protocol, p?.port)));
    portKeys.add(key);
  });

  // Upstream reports these under the capitalised path `spec.LoadBalancerSourceRanges`.
  const ranges = spec.loadBalancerSourceRanges ?? [];
  const annotation = svc.metadata?.annotations?.[LB_SOURCE_RANGES_ANNOTATION];
  if (ranges.length > 0) {
    const path = "spec.LoadBalancerSourceRanges";
    if (spec.type !== "LoadBalancer") errs.push(E.forbidden(path, "may only be used when `type` is 'LoadBalancer'"));
    ranges.forEach((r, i) => errs.push(...isValidCIDR(`${path}[${i}]`, str(r).trim())));
  } else if (annotation !== undefined) {
    const path = `metadata.annotations[${LB_SOURCE_RANGES_ANNOTATION}]`;
    if (spec.type !== "LoadBalancer") errs.push(E.forbidden(path, "may only be used when `type` is 'LoadBalancer'"));
    const v = str(annotation).trim();
    if (v !== "") for (const r of v.split(",")) errs.push(...isValidCIDR(path, r.trim()));
  }

  if (spec.allocateLoadBalancerNodePorts !== undefined && spec.allocateLoadBalancerNodePorts !== null && spec.type !== "LoadBalancer") {
    errs.push(E.forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"));
  }
  if (spec.type === "LoadBalancer" && (spec.allocateLoadBalancerNodePorts === undefined || spec.allocateLoadBalancerNodePorts === null)) {
    errs.push(E.required("spec.allocateLoadBalancerNodePorts"));
  }

  errs.push(...validateLoadBalancerClass(svc, undefined));
  errs.push(...validateExternalTrafficPolicy(svc, opts));
  errs.push(...validateInternalTrafficPolicy(svc));
  if (spec.trafficDistribution !== undefined && spec.trafficDistribution !== null && !has(SUPPORTED_TRAFFIC_DISTRIBUTION, spec.trafficDistribution)) {
    errs.push(E.notSupported("spec.trafficDistribution", spec.trafficDistribution, SUPPORTED_TRAFFIC_DISTRIBUTION));
  }
  return errs;
}

// ------------------------------------------------------------------ Endpoints

function validateEndpointAddress(addr: { ip?: unknown; hostname?: unknown; nodeName?: unknown }, path: string): FieldError[] {
  const errs: FieldError[] = [];
  errs.push(...isValidIP(`${path}.ip`, addr.ip ?? ""));
  if (addr.hostname) errs.push(...validateDNS1123Label(str(addr.hostname), `${path}.hostname`));
  if (addr.nodeName !== undefined && addr.nodeName !== null) {
    errs.push(...eachMsg(`${path}.nodeName`, str(addr.nodeName), isDNS1123Subdomain(str(addr.nodeName))));
  }
  errs.push(...validateNonSpecialIP(str(addr.ip), `${path}.ip`));
  return errs;
}

/** ValidateEndpoints (create and update: same rules plus immutable name on update). */
export function validateEndpoints(ep: Endpoints, old?: Endpoints): FieldError[] {
  const errs: FieldError[] = [];
  if (old) errs.push(...validateObjectMetaUpdate(ep.metadata, old.metadata));
  errs.push(...validateObjectMeta(ep.metadata, true, isDNS1123Subdomain));
  (ep.subsets ?? []).forEach((ssRaw, i) => {
    const ss = ssRaw ?? {};
    const path = `subsets[${i}]`;
    const addrs = ss.addresses ?? [];
    const notReady = ss.notReadyAddresses ?? [];
    if (addrs.length === 0 && notReady.length === 0) {
      errs.push(E.required(path, "must specify `addresses` or `notReadyAddresses`"));
    }
    addrs.forEach((a, j) => errs.push(...validateEndpointAddress(a ?? {}, `${path}.addresses[${j}]`)));
    notReady.forEach((a, j) => errs.push(...validateEndpointAddress(a ?? {}, `${path}.notReadyAddresses[${j}]`)));
    const ports = ss.ports ?? [];
    ports.forEach((pRaw, j) => {
      const p = pRaw ?? ({} as { name?: string; port: number });
      const pp = `${path}.ports[${j}]`;
      const name = str(p.name);
      if (ports.length > 1 && name === "") errs.push(E.required(`${pp}.name`));
      else if (name !== "") errs.push(...validateDNS1123Label(name, `${pp}.name`));
      for (const m of isValidPortNum(p.port)) errs.push(E.invalid(`${pp}.port`, p.port ?? 0, m));
      if (!p.protocol) errs.push(E.required(`${pp}.protocol`));
      else if (!has(SUPPORTED_PROTOCOLS, p.protocol)) errs.push(E.notSupported(`${pp}.protocol`, p.protocol, SUPPORTED_PROTOCOLS));
      if (p.appProtocol !== undefined && p.appProtocol !== null) errs.push(...validateQualifiedName(str(p.appProtocol), `${pp}.appProtocol`));
    });
  });
  return errs;
}

// ------------------------------------------------------------------ EndpointSlice

const SUPPORTED_ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"] as const;
const MAX_ENDPOINTS = 1000;
const MAX_ADDRESSES = 100;
const MAX_PORTS = 100;
const MAX_TOPOLOGY_LABELS = 16;

function isFullyQualifiedDomainName(field: string, name: string): FieldError[] {
  if (name.length === 0) return [E.required(field)];
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  const sub = isDNS1123Subdomain(n);
  if (sub.length) return [E.invalid(field, n, sub.join(","))];
  const labels = n.split(".");
  if (labels.length < 2) return [E.invalid(field, n, "should be a domain with at least two segments separated by dots")];
  for (const l of labels) {
    const le = isDNS1123Label(l);
    if (le.length) return [E.invalid(field, l, le.join(","))];
  }
  return [];
}

/** ValidateEndpointSlice (create) / ValidateEndpointSliceUpdate (with `old`: addressType is immutable). */
export function validateEndpointSlice(es: EndpointSlice, old?: EndpointSlice): FieldError[] {
  const errs: FieldError[] = [];
  errs.push(...validateObjectMeta(es.metadata, true, isDNS1123Subdomain));
  const addressTypes: readonly string[] = old ? ["FQDN", "IP", "IPv4", "IPv6"] : SUPPORTED_ADDRESS_TYPES;
  const at = es.addressType as string | undefined;
  if (!at) errs.push(E.required("addressType"));
  else if (!has(addressTypes, at)) errs.push(E.notSupported("addressType", at, addressTypes));

  const endpoints = es.endpoints ?? [];
  if (endpoints.length > MAX_ENDPOINTS) {
    errs.push(E.tooMany("endpoints", endpoints.length, MAX_ENDPOINTS));
  } else {
    endpoints.forEach((epRaw, i) => {
      const ep = epRaw ?? ({} as EndpointSlice["endpoints"][number]);
      const path = `endpoints[${i}]`;
      const apath = `${path}.addresses`;
      const addrs = ep.addresses ?? [];
      if (addrs.length === 0) errs.push(E.required(apath, "must contain at least 1 address"));
      else if (addrs.length > MAX_ADDRESSES) errs.push(E.tooMany(apath, addrs.length, MAX_ADDRESSES));
      addrs.forEach((a, j) => {
        const p = `${apath}[${j}]`;
        const ip = parseIP(a);
        switch (at) {
          case "IP":
            errs.push(...isValidIP(p, a));
            break;
          case "IPv4":
            if (!ip || ip.family !== 4) errs.push(E.invalid(p, a, "must be a valid IPv4 address"));
            errs.push(...validateNonSpecialIP(str(a), p));
            break;
          case "IPv6":
            if (!ip || ip.family !== 6) errs.push(E.invalid(p, a, "must be a valid IPv6 address"));
            errs.push(...validateNonSpecialIP(str(a), p));
            break;
          case "FQDN":
            errs.push(...isFullyQualifiedDomainName(p, str(a)));
            break;
        }
      });
      if (ep.nodeName !== undefined && ep.nodeName !== null) {
        errs.push(...eachMsg(`${path}.nodeName`, str(ep.nodeName), isDNS1123Subdomain(str(ep.nodeName))));
      }
      const topo = ep.deprecatedTopology;
      if (topo && typeof topo === "object") {
        const n = Object.keys(topo).length;
        if (n > MAX_TOPOLOGY_LABELS) errs.push(E.tooMany(`${path}.deprecatedTopology`, n, MAX_TOPOLOGY_LABELS));
        errs.push(...validateLabels(topo, `${path}.deprecatedTopology`));
      }
      if (ep.hostname !== undefined && ep.hostname !== null) errs.push(...validateDNS1123Label(str(ep.hostname), `${path}.hostname`));
    });
  }

  const ports = es.ports ?? [];
  if (ports.length > MAX_PORTS) {
    errs.push(E.tooMany("ports", ports.length, MAX_PORTS));
  } else {
    const names = new Set<string>();
    ports.forEach((pRaw, i) => {
      const p = pRaw ?? {};
      const path = `ports[${i}]`;
      const name = str(p.name);
      if (name.length > 0) errs.push(...validateDNS1123Label(name, `${path}.name`));
      if (names.has(name)) errs.push(E.duplicate(`${path}.name`, name));
      else names.add(name);
      if (!p.protocol) errs.push(E.required(`${path}.protocol`));
      else if (!has(SUPPORTED_PROTOCOLS, p.protocol)) errs.push(E.notSupported(`${path}.protocol`, p.protocol, SUPPORTED_PROTOCOLS));
      if (p.port !== undefined && p.port !== null) {
        for (const m of isValidPortNum(p.port)) errs.push(E.invalid(`${path}.port`, p.port, m));
      }
      if (p.appProtocol !== undefined && p.appProtocol !== null) {
        errs.push(...validateQualifiedName(str(p.appProtocol), `${path}.appProtocol`));
      }
    });
  }

  if (old && (old.addressType ?? "") !== (at ?? "")) errs.push(E.invalid("addressType", at ?? "", "field is immutable"));
  return errs;
}

// ------------------------------------------------------------------ Namespace

/** ValidateNamespace: cluster-scoped, name a DNS-1123 label. */
export function validateNamespace(ns: Namespace, old?: Namespace): FieldError[] {
  const errs: FieldError[] = [];
  if (old) errs.push(...validateObjectMetaUpdate(ns.metadata, old.metadata));
  errs.push(...validateObjectMeta(ns.metadata, false, isDNS1123Label));
  (ns.spec?.finalizers ?? []).forEach((f, i) => {
    const v = str(f);
    if (!v.includes("/") && v !== "kubernetes") {
      errs.push(E.invalid(`spec.finalizers[${i}]`, v, "name is neither a standard finalizer name nor is it fully qualified"));
    } else if (v.includes("/")) {
      errs.push(...validateQualifiedName(v, `spec.finalizers[${i}]`));
    }
  });
  return errs;
}
