// CRC32c (Castagnoli, reflected polynomial 0x82F63B78) for SCTP (RFC 4960 appendix B).
// A 256-entry table built once at init into linear memory; the checksum is stored in the
// SCTP common header little-endian (as the CRC's bytes appear on the wire per RFC 3309).

let table: usize = 0;

/** Builds the lookup table at `at` (1 KiB). Called once by the region allocator at init. */
export function crc32cInit(at: usize): void {
  table = at;
  for (let i: u32 = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    store<u32>(at + (<usize>i << 2), c);
  }
}

/** Uses a table another instance built at `at` (instances sharing one memory). */
export function crc32cAttach(at: usize): void {
  table = at;
}

/** CRC32c of [p, p+len). */
export function crc32c(p: usize, len: u32): u32 {
  let c: u32 = 0xffffffff;
  const t = table;
  for (let i: u32 = 0; i < len; i++) {
    c = load<u32>(t + (<usize>((c ^ <u32>load<u8>(p + i)) & 0xff) << 2)) ^ (c >>> 8);
  }
  return ~c;
}
