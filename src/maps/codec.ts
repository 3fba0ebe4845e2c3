// Typed codecs for fixed-layout structs in WASM memory: one field list per key or value,
// byte order explicit in the field type. `ipv4be` and `portbe` are stored in network order
// and exposed as a dotted string and a host-order number: the only place that converts.

export type FieldType = "u8" | "u16" | "u32" | "u64" | "ipv4be" | "portbe";

export interface FieldDecl {
  readonly name: string;
  readonly type: FieldType;
  readonly offset: number;
}

type FieldValue<T extends FieldType> = T extends "u64" ? bigint : T extends "ipv4be" ? string : number;

/** The JS shape of a struct from its field list. */
export type StructOf<F extends readonly FieldDecl[]> = {
  [K in F[number] as K["name"]]: FieldValue<K["type"]>;
};

const WIDTH: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, ipv4be: 4, portbe: 2 };

/** Dotted quad → host-order u32. A hand-written scan: map programming converts millions. */
export function ipv4ToU32(ip: string): number {
  const v = ipv4ToU32OrNeg(ip);
  if (v < 0) throw new TypeError(`not an IPv4 address: ${JSON.stringify(ip)}`);
  return v;
}

/** ipv4ToU32 that answers -1 for anything but a dotted quad (no exception on the hot path). */
export function ipv4ToU32OrNeg(ip: string): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) digits = 99;
    } else if (c === 46 && digits > 0 && digits < 4 && dots < 3) {
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      digits = 99;
      break;
    }
  }
  if (dots !== 3 || digits === 0 || digits > 3) return -1;
  return (v * 256 + part) >>> 0;
}

export function u32ToIpv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

export class Struct<F extends readonly FieldDecl[]> {
  constructor(readonly size: number, readonly fields: F) {
    for (const f of fields) {
      if (f.offset + WIDTH[f.type] > size) throw new Error(`field ${f.name} overruns struct of ${size} bytes`);
    }
  }

  /** Writes `value` at `at`; missing fields (and padding) are written as zero. */
  encode(view: DataView, at: number, value: Partial<StructOf<F>>): void {
    for (let i = 0; i < this.size; i += 4) view.setUint32(at + i, 0, true);
    const v = value as Record<string, unknown>;
    for (const f of this.fields) {
      const x = v[f.name];
      if (x === undefined) continue;
      const o = at + f.offset;
      switch (f.type) {
        case "u8": view.setUint8(o, x as number); break;
        case "u16": view.setUint16(o, x as number, true); break;
        case "u32": view.setUint32(o, (x as number) >>> 0, true); break;
        case "u64": view.setBigUint64(o, BigInt(x as bigint | number), true); break;
        case "ipv4be": view.setUint32(o, typeof x === "number" ? x >>> 0 : ipv4ToU32(x as string), false); break;
        case "portbe": view.setUint16(o, x as number, false); break;
      }
    }
  }

  decode(view: DataView, at: number): StructOf<F> {
    const out: Record<string, unknown> = {};
    for (const f of this.fields) {
      const o = at + f.offset;
      switch (f.type) {
        case "u8": out[f.name] = view.getUint8(o); break;
        case "u16": out[f.name] = view.getUint16(o, true); break;
        case "u32": out[f.name] = view.getUint32(o, true); break;
        case "u64": out[f.name] = view.getBigUint64(o, true); break;
        case "ipv4be": out[f.name] = u32ToIpv4(view.getUint32(o, false)); break;
        case "portbe": out[f.name] = view.getUint16(o, false); break;
      }
    }
    return out as StructOf<F>;
  }
}

export function struct<const F extends readonly FieldDecl[]>(size: number, fields: F): Struct<F> {
  return new Struct(size, fields);
}
