// virtio-net header view: the 10 bytes a TAP opened with IFF_VNET_HDR puts before every frame it
// hands us, and expects before every frame we write (struct virtio_net_hdr, little-endian, as
// Linux uses on little-endian hosts). It tells how the frame's checksum and segmentation are
// offloaded:
//   | flags u8 | gso_type u8 | hdr_len u16 | gso_size u16 | csum_start u16 | csum_offset u16 |
// flags NEEDS_CSUM: the L4 checksum at csum_start + csum_offset holds only the pseudo-header
// sum and is completed after us; gso_type != NONE: a super-frame of up to 64 KiB that the
// kernel cuts into gso_size segments after us.

export const VNET_HDR_LEN: u32 = 10;

export const VNET_F_NEEDS_CSUM: u32 = 1;
export const VNET_F_DATA_VALID: u32 = 2;

export const VNET_GSO_NONE: u32 = 0;
export const VNET_GSO_TCPV4: u32 = 1;
export const VNET_GSO_UDP: u32 = 3; // UFO, the old IPv4 UDP fragmentation offload
export const VNET_GSO_TCPV6: u32 = 4;
export const VNET_GSO_UDP_L4: u32 = 5; // USO: UDP segmentation
export const VNET_GSO_ECN: u32 = 0x80; // flag bit on TCP types: CWR set on the first segment

// @ts-ignore: decorator
@inline export function vnetFlags(h: usize): u32 {
  return <u32>load<u8>(h, 0);
}

/** The GSO type without the ECN flag bit. */
// @ts-ignore: decorator
@inline export function vnetGsoType(h: usize): u32 {
  return <u32>load<u8>(h, 1) & ~VNET_GSO_ECN;
}

// @ts-ignore: decorator
@inline export function vnetGsoSize(h: usize): u32 {
  return <u32>load<u16>(h, 4);
}

// @ts-ignore: decorator
@inline export function vnetCsumStart(h: usize): u32 {
  return <u32>load<u16>(h, 6);
}

// @ts-ignore: decorator
@inline export function vnetCsumOffset(h: usize): u32 {
  return <u32>load<u16>(h, 8);
}

/** "Nothing offloaded": for a frame the pipeline rewrote into a reply with full checksums. */
// @ts-ignore: decorator
@inline export function vnetClear(h: usize): void {
  store<u64>(h, 0);
  store<u16>(h, 0, 8);
}
