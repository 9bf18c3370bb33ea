/**
 * A small ONNX model writer: a protobuf encoder for the subset of `onnx.proto` needed to describe a graph of standard
 * operators with initializers (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto).
 *
 * Used to build the test embedding models, the matrix kernels of the vector-index builder (k-means assignment runs
 * as an ONNX Runtime MatMul + ArgMax graph) and the native GEMM kernels of the built-in model (src/model/native.ts).
 */

// ---- protobuf wire encoding -----------------------------------------------------------------------------------------

class ProtoWriter {
  private parts: Uint8Array[] = [];
  private len = 0;

  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.len += b.length;
  }
  private varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    const out: number[] = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) b |= 0x80;
      out.push(b);
    } while (x !== 0n);
    this.push(Uint8Array.from(out));
  }
  private tag(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }
  int(field: number, v: number | bigint): this {
    this.tag(field, 0);
    this.varint(BigInt(v));
    return this;
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2);
    this.varint(BigInt(b.length));
    this.push(b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.len);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

// ---- model description ----------------------------------------------------------------------------------------------

export type OnnxDType = "float32" | "int64" | "int32" | "int8" | "uint8";

const DTYPE_CODE: Record<OnnxDType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7 };

export interface OnnxTensor {
  name: string;
  dtype: OnnxDType;
  dims: number[];
  data: Float32Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;
}

export type OnnxAttribute =
  { f: number } | { i: number } | { s: string } | { t: OnnxTensor } | { floats: number[] } | { ints: number[] };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attrs?: Record<string, OnnxAttribute>;
  domain?: string;
}

export interface OnnxValueInfo {
  name: string;
  dtype: OnnxDType;
  /** Dimension sizes; a string is a symbolic (dynamic) dimension such as "batch". */
  shape: Array<number | string>;
}

export interface OnnxModelSpec {
  nodes: OnnxNode[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  initializers?: OnnxTensor[];
  graphName?: string;
  /** Default opset 17. */
  opset?: number;
  /** Opset imports of other operator domains (e.g. `{ domain: "com.microsoft", version: 1 }` for ORT's contrib ops). */
  domains?: Array<{ domain: string; version: number }>;
  /** Default IR version 8. */
  irVersion?: number;
  producer?: string;
}

function tensorProto(t: OnnxTensor): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, DTYPE_CODE[t.dtype]);
  w.string(8, t.name);
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  w.bytes(9, raw.slice());
  return w;
}

function attributeProto(name: string, a: OnnxAttribute): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if ("f" in a) w.float(2, a.f).int(20, 1);
  else if ("i" in a) w.int(3, a.i).int(20, 2);
  else if ("s" in a) w.string(4, a.s).int(20, 3);
  else if ("t" in a) w.message(5, tensorProto(a.t)).int(20, 4);
  else if ("floats" in a) {
    for (const f of a.floats) w.float(7, f);
    w.int(20, 6);
  } else {
    for (const i of a.ints) w.int(8, i);
    w.int(20, 7);
  }
  return w;
}

function valueInfoProto(v: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape)
    shape.message(1, typeof d === "number" ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  const tensorType = new ProtoWriter().int(1, DTYPE_CODE[v.dtype]).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

/** Serialize a model to ONNX protobuf bytes (loadable by ONNX Runtime). */
export function buildOnnxModel(spec: OnnxModelSpec): Uint8Array {
  const graph = new ProtoWriter();
  spec.nodes.forEach((n, idx) => {
    const node = new ProtoWriter();
    for (const i of n.inputs) node.string(1, i);
    for (const o of n.outputs) node.string(2, o);
    node.string(3, n.name ?? `${n.op}_${idx}`);
    node.string(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) node.message(5, attributeProto(k, v));
    if (n.domain) node.string(7, n.domain);
    graph.message(1, node);
  });
  graph.string(2, spec.graphName ?? "graph");
  for (const t of spec.initializers ?? []) graph.message(5, tensorProto(t));
  for (const i of spec.inputs) graph.message(11, valueInfoProto(i));
  for (const o of spec.outputs) graph.message(12, valueInfoProto(o));
  const model = new ProtoWriter()
    .int(1, spec.irVersion ?? 8)
    .string(2, spec.producer ?? "searchrl")
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, "").int(2, spec.opset ?? 17));
  for (const d of spec.domains ?? []) model.message(8, new ProtoWriter().string(1, d.domain).int(2, d.version));
  return model.finish();
}
