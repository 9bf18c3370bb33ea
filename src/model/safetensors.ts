/**
 * safetensors reading and writing (the Hugging Face format: u64 little-endian header length, JSON header with
 * `{name: {dtype, shape, data_offsets}}` and optional `__metadata__`, then the raw little-endian data).
 * Float dtypes F32, F16, BF16 and F64 convert to float32 on read. Files are read tensor by tensor (no size limit
 * beyond memory for the tensors actually read).
 */
import { closeSync, openSync, readSync, fstatSync } from "node:fs";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface SafetensorsTensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
  /** Absolute byte offset of the data section. */
  dataStart: number;
}

function parseHeader(json: string, what: string, dataBytes: number | null): Omit<SafetensorsHeader, "dataStart"> {
  let obj: unknown;
  try {
    obj = JSON.parse(json);
  } catch {
    throw new Error(`${what}: safetensors header is not valid JSON`);
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new Error(`${what}: bad safetensors header`);
  const tensors = new Map<string, SafetensorsTensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(obj as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const t = v as { dtype?: string; shape?: number[]; data_offsets?: number[] };
    if (!t || typeof t.dtype !== "string" || !(t.dtype in DTYPE_BYTES)) {
      throw new Error(`${what}: tensor ${name} has unsupported dtype ${String(t?.dtype)}`);
    }
    if (!Array.isArray(t.shape) || !Array.isArray(t.data_offsets) || t.data_offsets.length !== 2) {
      throw new Error(`${what}: tensor ${name} has a malformed entry`);
    }
    const dtype = t.dtype as SafetensorsDtype;
    const [begin, end] = t.data_offsets;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== n * DTYPE_BYTES[dtype] || begin < 0 || (dataBytes !== null && end > dataBytes)) {
      throw new Error(
        `${what}: tensor ${name} offsets [${begin}, ${end}] do not match its shape/dtype or the file size`,
      );
    }
    tensors.set(name, { dtype, shape: t.shape.slice(), begin, end });
  }
  return { tensors, metadata };
}

/** Convert raw little-endian tensor bytes to float32. */
export function bytesToFloat32(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F32": {
      const out = new Float32Array(bytes.byteLength / 4);
      for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    }
    case "F64": {
      const out = new Float32Array(bytes.byteLength / 8);
      for (let i = 0; i < out.length; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
    case "BF16": {
      const n = bytes.byteLength / 2;
      const u = new Uint32Array(n);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(i * 2, true) << 16;
      return new Float32Array(u.buffer);
    }
    case "F16": {
      const n = bytes.byteLength / 2;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(i * 2, true));
      return out;
    }
    default:
      throw new Error(`cannot convert ${dtype} tensor to float32`);
  }
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);
/** float32 -> bfloat16 bits (round to nearest even). */
export function f32ToBf16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return (u >>> 16) | 0x40; // NaN stays NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 -> float16 bits (round to nearest even). */
export function f32ToF16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  e = h >>> 10;
  return sign | h;
}

/** One tensor read from an in-memory safetensors buffer. */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: Uint8Array;
  toFloat32(): Float32Array;
}

/** Parse a whole safetensors file held in memory. */
export function readSafetensors(
  buf: Uint8Array,
  what = "safetensors",
): { metadata: Record<string, string>; names: string[]; tensor(name: string): SafetensorsTensor } {
  if (buf.byteLength < 8) throw new Error(`${what}: file too short`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (8 + hlen > buf.byteLength) throw new Error(`${what}: header length ${hlen} exceeds the file`);
  const json = new TextDecoder().decode(buf.subarray(8, 8 + hlen));
  const dataStart = 8 + hlen;
  const { tensors, metadata } = parseHeader(json, what, buf.byteLength - dataStart);
  return {
    metadata,
    names: [...tensors.keys()],
    tensor(name: string): SafetensorsTensor {
      const t = tensors.get(name);
      if (!t) throw new Error(`${what}: no tensor ${name}`);
      const bytes = buf.subarray(dataStart + t.begin, dataStart + t.end);
      return { dtype: t.dtype, shape: t.shape, bytes, toFloat32: () => bytesToFloat32(bytes, t.dtype) };
    },
  };
}

/** A safetensors file on disk, read tensor by tensor (works for files larger than a Buffer can hold). */
export class SafetensorsFile {
  private fd: number;
  readonly header: SafetensorsHeader;
  constructor(readonly file: string) {
    this.fd = openSync(file, "r");
    try {
      const size = fstatSync(this.fd).size;
      const head = Buffer.alloc(8);
      if (readSync(this.fd, head, 0, 8, 0) !== 8) throw new Error(`${file}: file too short`);
      const hlen = Number(head.readBigUInt64LE(0));
      if (hlen > 100 * 2 ** 20 || 8 + hlen > size) throw new Error(`${file}: bad safetensors header length ${hlen}`);
      const hb = Buffer.alloc(hlen);
      readSync(this.fd, hb, 0, hlen, 8);
      const parsed = parseHeader(hb.toString("utf8"), file, size - 8 - hlen);
      this.header = { ...parsed, dataStart: 8 + hlen };
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }
  get names(): string[] {
    return [...this.header.tensors.keys()];
  }
  info(name: string): SafetensorsTensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new Error(`${this.file}: no tensor ${name}`);
    return t;
  }
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    const n = t.end - t.begin;
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const chunk = Math.min(n - done, 1 << 30);
      const r = readSync(this.fd, out, done, chunk, this.header.dataStart + t.begin + done);
      if (r <= 0) throw new Error(`${this.file}: short read of ${name}`);
      done += r;
    }
    return out;
  }
  readFloat32(name: string): Float32Array {
    return bytesToFloat32(this.readBytes(name), this.info(name).dtype);
  }
  close(): void {
    closeSync(this.fd);
  }
}

export interface SafetensorsWriteTensor {
  name: string;
  /** F32, BF16 or F16 for float data given as Float32Array (converted); any dtype for raw bytes. */
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Uint8Array;
}

/** Serialize tensors (in the given order) and string metadata into safetensors bytes. */
export function writeSafetensors(tensors: SafetensorsWriteTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let off = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    let bytes: Uint8Array;
    if (t.data instanceof Float32Array) {
      if (t.data.length !== n) throw new Error(`tensor ${t.name}: ${t.data.length} values for shape [${t.shape}]`);
      if (t.dtype === "F32") {
        bytes = new Uint8Array(n * 4);
        const dv = new DataView(bytes.buffer);
        for (let i = 0; i < n; i++) dv.setFloat32(i * 4, t.data[i], true);
      } else if (t.dtype === "BF16" || t.dtype === "F16") {
        bytes = new Uint8Array(n * 2);
        const dv = new DataView(bytes.buffer);
        const conv = t.dtype === "BF16" ? f32ToBf16 : f32ToF16;
        for (let i = 0; i < n; i++) dv.setUint16(i * 2, conv(t.data[i]), true);
      } else {
        throw new Error(`tensor ${t.name}: cannot write float data as ${t.dtype}`);
      }
    } else {
      bytes = t.data;
      if (bytes.byteLength !== n * DTYPE_BYTES[t.dtype]) throw new Error(`tensor ${t.name}: byte length mismatch`);
    }
    if (t.name in header) throw new Error(`duplicate tensor name ${t.name}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes.byteLength] };
    off += bytes.byteLength;
    blobs.push(bytes);
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  const pad = (8 - (hb.byteLength % 8)) % 8;
  if (pad) {
    json += " ".repeat(pad);
    hb = enc.encode(json);
  }
  const out = new Uint8Array(8 + hb.byteLength + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.byteLength), true);
  out.set(hb, 8);
  let o = 8 + hb.byteLength;
  for (const b of blobs) {
    out.set(b, o);
    o += b.byteLength;
  }
  return out;
}
