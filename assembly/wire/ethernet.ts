// Ethernet II header view (IEEE 802.3 framing without FCS, as a TAP delivers it).
// checkLen guarantees: after `ethCheckLen(len)` passes, every accessor below reads inside the frame.

export const ETH_HLEN: u32 = 14;
export const ETH_DST: u32 = 0; // 6 bytes
export const ETH_SRC: u32 = 6; // 6 bytes
export const ETH_TYPE: u32 = 12; // big-endian u16

export const ETHERTYPE_IPV4: u32 = 0x0800;
export const ETHERTYPE_ARP: u32 = 0x0806;
export const ETHERTYPE_VLAN: u32 = 0x8100;
export const ETHERTYPE_QINQ: u32 = 0x88a8;
export const ETHERTYPE_IPV6: u32 = 0x86dd;

// @ts-ignore: decorator
@inline export function ethCheckLen(len: u32): bool {
  return len >= ETH_HLEN;
}

// @ts-ignore: decorator
@inline export function ethType(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p, ETH_TYPE));
}

/** Swaps source and destination MAC: a frame turned around to go back where it came from. */
// @ts-ignore: decorator
@inline export function ethSwapMacs(p: usize): void {
  const d4 = load<u32>(p, 0);
  const d2 = load<u16>(p, 4);
  store<u32>(p, load<u32>(p, 6), 0);
  store<u16>(p, load<u16>(p, 10), 4);
  store<u32>(p, d4, 6);
  store<u16>(p, d2, 10);
}
