// Verdicts and reasons as the WASM module numbers them (assembly/verdict.ts); stable codes,
// never renumbered. test/maps/layout.test.ts checks this table against the module's exports.

export const VERDICTS = ["PASS", "TX", "REPLY", "DROP"] as const;
export type Verdict = (typeof VERDICTS)[number];

export const REASONS = {
  R_PASS_NOT_SERVICE: 1,
  R_PASS_ARP: 2,
  R_PASS_NOT_IPV4: 3,
  R_PASS_VLAN: 4,
  R_PASS_FRAGMENT: 5,
  R_PASS_OTHER_L4: 6,
  R_PASS_ICMP_UNTRACKED: 7,
  R_TX_NEW_FLOW: 16,
  R_TX_ESTABLISHED: 17,
  R_TX_REPLY: 18,
  R_TX_ICMP_ERROR: 19,
  R_TX_RESELECTED: 20,
  R_REPLY_NO_ENDPOINTS: 24,
  R_REPLY_UNKNOWN_PORT: 25,
  R_REPLY_ECHO: 26,
  R_DROP_ETH_TRUNCATED: 32,
  R_DROP_IP_TRUNCATED: 33,
  R_DROP_IP_HEADER: 34,
  R_DROP_IP_CHECKSUM: 35,
  R_DROP_L4_TRUNCATED: 36,
  R_DROP_FRAGMENT: 37,
  R_DROP_NO_LOCAL_ENDPOINT: 38,
  R_DROP_SOURCE_RANGE: 39,
  R_DROP_CT_FULL: 40,
  R_DROP_SNAT_NO_PORT: 41,
  R_DROP_SNAT_NO_ADDR: 42,
  R_DROP_NO_BACKEND: 43,
  R_DROP_FRAME_TOO_BIG: 44,
  R_DROP_BAD_DESCRIPTOR: 45,
  R_DROP_ICMP_MALFORMED: 46,
  R_DROP_SCTP_CHECKSUM: 47,
  R_DROP_VNET_HDR: 48,
} as const;

export type ReasonConst = keyof typeof REASONS;

const BY_CODE = new Map<number, string>(
  Object.entries(REASONS).map(([k, v]) => [v, k.replace(/^R_(PASS|TX|REPLY|DROP)_/, "").toLowerCase()]),
);

/** Short name of a reason code, e.g. 39 → "source_range". */
export function reasonName(code: number): string {
  return BY_CODE.get(code) ?? `reason_${code}`;
}

export function verdictName(v: number): Verdict {
  return VERDICTS[v] ?? "DROP";
}
