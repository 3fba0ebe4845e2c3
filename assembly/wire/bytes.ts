// Byte-order helpers for packet views. Packets are big-endian on the wire and WASM is
// little-endian: `load<u16>` of a wire field gives the byte-swapped value ("raw"). Names say
// which one a value is: `...Be` / raw means "as on the wire", a plain name is host order.

/** Reads a big-endian u16 at p as a host-order number. */
// @ts-ignore: decorator
@inline export function getBe16(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}

/** Reads a big-endian u32 at p as a host-order number. */
// @ts-ignore: decorator
@inline export function getBe32(p: usize): u32 {
  return bswap<u32>(load<u32>(p));
}

/** Writes a host-order number as a big-endian u16 at p. */
// @ts-ignore: decorator
@inline export function putBe16(p: usize, v: u32): void {
  store<u16>(p, bswap<u16>(<u16>v));
}

/** Writes a host-order number as a big-endian u32 at p. */
// @ts-ignore: decorator
@inline export function putBe32(p: usize, v: u32): void {
  store<u32>(p, bswap<u32>(v));
}
