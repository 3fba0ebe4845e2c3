// Verdicts and reasons: the stable, numbered outcome of every frame. Never renumber; add new
// reasons at the end. src/maps/verdicts.ts mirrors this list (a test compares the two).
// Each frame gets exactly one reason, counted in the stats_reason map (packets and bytes).

export const VERDICT_PASS: u32 = 0; // not service traffic: give back to the kernel unchanged
export const VERDICT_TX: u32 = 1; // translated: send on (MACs swapped when CFG_SWAP_MACS)
export const VERDICT_REPLY: u32 = 2; // the frame was rewritten into a reply to its sender
export const VERDICT_DROP: u32 = 3; // discard

// PASS reasons
export const R_PASS_NOT_SERVICE: u32 = 1; // IPv4 to no service address
export const R_PASS_ARP: u32 = 2;
export const R_PASS_NOT_IPV4: u32 = 3; // IPv6 and other ethertypes
export const R_PASS_VLAN: u32 = 4; // VLAN-tagged frames are not inspected
export const R_PASS_FRAGMENT: u32 = 5; // a fragment not addressed to a service address
export const R_PASS_OTHER_L4: u32 = 6; // a protocol other than TCP/UDP/SCTP/ICMP
export const R_PASS_ICMP_UNTRACKED: u32 = 7; // ICMP error quoting no tracked flow
// TX reasons
export const R_TX_NEW_FLOW: u32 = 16; // first packet of a flow: backend selected, CT created
export const R_TX_ESTABLISHED: u32 = 17; // forward packet of a tracked flow
export const R_TX_REPLY: u32 = 18; // reply of a tracked flow: reverse NAT
export const R_TX_ICMP_ERROR: u32 = 19; // ICMP error quoting a tracked flow, inner header translated
export const R_TX_RESELECTED: u32 = 20; // tracked flow whose backend went away: re-selected
// REPLY reasons
export const R_REPLY_NO_ENDPOINTS: u32 = 24; // service without endpoints: ICMP port unreachable
export const R_REPLY_UNKNOWN_PORT: u32 = 25; // service address, port not served: port unreachable
export const R_REPLY_ECHO: u32 = 26; // ping to a service address answered
// DROP reasons
export const R_DROP_ETH_TRUNCATED: u32 = 32;
export const R_DROP_IP_TRUNCATED: u32 = 33;
export const R_DROP_IP_HEADER: u32 = 34;
export const R_DROP_IP_CHECKSUM: u32 = 35;
export const R_DROP_L4_TRUNCATED: u32 = 36;
export const R_DROP_FRAGMENT: u32 = 37; // fragment to a service address (not supported)
export const R_DROP_NO_LOCAL_ENDPOINT: u32 = 38; // traffic policy Local, no local endpoint
export const R_DROP_SOURCE_RANGE: u32 = 39; // loadBalancerSourceRanges does not allow the source
export const R_DROP_CT_FULL: u32 = 40; // conntrack entry could not be created: fail closed
export const R_DROP_SNAT_NO_PORT: u32 = 41; // no free masquerade source port
export const R_DROP_SNAT_NO_ADDR: u32 = 42; // masquerade needed but no SNAT address configured
export const R_DROP_NO_BACKEND: u32 = 43; // selection found no usable backend (maps inconsistent)
export const R_DROP_FRAME_TOO_BIG: u32 = 44; // a reply would not fit the frame buffer
export const R_DROP_BAD_DESCRIPTOR: u32 = 45; // batch descriptor outside the frame area
export const R_DROP_ICMP_MALFORMED: u32 = 46; // ICMP error with a truncated or bad quote
export const R_DROP_SCTP_CHECKSUM: u32 = 47; // SCTP CRC32c does not verify before translation
export const R_DROP_VNET_HDR: u32 = 48; // virtio-net header the pipeline cannot honour on a frame it would translate

export const REASON_MAX: u32 = 64;
