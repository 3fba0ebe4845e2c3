// The Internet checksum (RFC 1071) and its incremental update (RFC 1624, eqn. 3):
// HC' = ~(~HC + ~m + m'). Every function here works on "raw" 16-bit words, i.e. words loaded
// little-endian straight from wire bytes. One's-complement addition commutes with a byte
// swap, so sums of raw words are the byte-swapped sums of wire words: raw in, raw out, and the
// stored checksum field (also loaded raw) needs no conversion. A test checks every
// incremental update against a full recompute.

/** Adds 16-bit words of [p, p+len) to sum (32-bit accumulator, not folded). Odd tail padded with 0. */
export function csumPartial(p: usize, len: u32, sum: u64): u64 {
  let s = sum;
  let n = len;
  while (n >= 8) {
    const w = load<u64>(p);
    s += (w & 0xffffffff) + (w >> 32);
    p += 8;
    n -= 8;
  }
  while (n >= 2) {
    s += <u64>load<u16>(p);
    p += 2;
    n -= 2;
  }
  if (n) s += <u64>load<u8>(p); // the odd byte is the high-order byte of a wire word = low byte raw
  return s;
}

/** Folds a wide sum to 16 bits and complements it: the value to store in a checksum field. */
// @ts-ignore: decorator
@inline export function csumFold(sum: u64): u16 {
  let s = sum;
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return <u16>~(<u32>s);
}

/** RFC 1624 update of checksum `csum` when a 16-bit word changes from `from` to `to` (all raw). */
// @ts-ignore: decorator
@inline export function csumReplace2(csum: u16, from: u16, to: u16): u16 {
  let s: u32 = <u32>(~csum & 0xffff) + <u32>(~from & 0xffff) + <u32>to;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return <u16>~s;
}

/** RFC 1624 update for a 32-bit field (an IPv4 address), raw. */
// @ts-ignore: decorator
@inline export function csumReplace4(csum: u16, from: u32, to: u32): u16 {
  let s: u32 = <u32>(~csum & 0xffff);
  s += (~from & 0xffff) + (~from >>> 16);
  s += (to & 0xffff) + (to >>> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return <u16>~s;
}

/**
 * The IPv4 pseudo-header sum for TCP/UDP: addresses (raw), protocol and L4 length. Not folded.
 */
export function pseudoHeaderSum(saddrRaw: u32, daddrRaw: u32, proto: u32, l4len: u32): u64 {
  let s: u64 = <u64>(saddrRaw & 0xffff) + <u64>(saddrRaw >>> 16);
  s += <u64>(daddrRaw & 0xffff) + <u64>(daddrRaw >>> 16);
  s += <u64>bswap<u16>(<u16>proto);
  s += <u64>bswap<u16>(<u16>l4len);
  return s;
}
