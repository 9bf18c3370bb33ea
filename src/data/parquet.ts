/**
 * veRL dataset rows as Parquet (ecosystem-contracts §4.1), written with hyparquet-writer (pure JavaScript, no native
 * code) under an explicit nested schema so pyarrow/pandas read `prompt` as list<struct<content, role>> and
 * `reward_model` / `extra_info` as structs; read back with hyparquet.
 */
import { readFile } from "node:fs/promises";
import { parquetReadObjects, type SchemaElement } from "hyparquet";
import { parquetWriteBuffer } from "hyparquet-writer";
import { atomicWriteFile } from "../util/fsutil.js";

export interface VerlMessage {
  role: string;
  content: string;
}

/** veRL multi-turn tool arguments (ecosystem-contracts §4.2): what veRL's `SearchTool` gets when it is created. */
export interface VerlToolsKwargs {
  search: { create_kwargs: { ground_truth: { target: string[] }; question: string; data_source: string } };
}

export interface VerlRow {
  data_source: string;
  prompt: VerlMessage[];
  ability: string;
  reward_model: { style: string; ground_truth: { target: string[] } };
  extra_info: {
    split: string;
    index: number;
    idx: string;
    question: string;
    /** Multi-turn tool variant only. */
    need_tools_kwargs?: boolean;
    tools_kwargs?: VerlToolsKwargs;
  };
}

const str = (name: string): SchemaElement => ({ name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" });

const strList = (name: string): SchemaElement[] => [
  { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  str("element"),
];

/** The Parquet schema of a veRL row (Arrow-style three-level LIST for the lists); `tools` adds the multi-turn fields. */
export function verlParquetSchema(tools = false): SchemaElement[] {
  return [
    { name: "root", num_children: 5 },
    str("data_source"),
    { name: "prompt", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
    { name: "list", repetition_type: "REPEATED", num_children: 1 },
    { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
    str("content"),
    str("role"),
    str("ability"),
    { name: "reward_model", repetition_type: "OPTIONAL", num_children: 2 },
    { name: "ground_truth", repetition_type: "OPTIONAL", num_children: 1 },
    { name: "target", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
    { name: "list", repetition_type: "REPEATED", num_children: 1 },
    str("element"),
    str("style"),
    { name: "extra_info", repetition_type: "OPTIONAL", num_children: tools ? 6 : 4 },
    str("idx"),
    { name: "index", type: "INT64", repetition_type: "OPTIONAL" },
    ...(tools ? [{ name: "need_tools_kwargs", type: "BOOLEAN", repetition_type: "OPTIONAL" } as SchemaElement] : []),
    str("question"),
    str("split"),
    ...(tools
      ? [
          { name: "tools_kwargs", repetition_type: "OPTIONAL", num_children: 1 } as SchemaElement,
          { name: "search", repetition_type: "OPTIONAL", num_children: 1 } as SchemaElement,
          { name: "create_kwargs", repetition_type: "OPTIONAL", num_children: 3 } as SchemaElement,
          str("data_source"),
          { name: "ground_truth", repetition_type: "OPTIONAL", num_children: 1 } as SchemaElement,
          ...strList("target"),
          str("question"),
        ]
      : []),
  ];
}

/** Encode veRL rows as a Parquet file image. */
export function verlRowsToParquet(rows: readonly VerlRow[]): Uint8Array {
  if (rows.length === 0) throw new Error("no rows to write (a Parquet file needs at least one row here)");
  const tools = rows[0].extra_info.tools_kwargs !== undefined;
  if (rows.some((r) => (r.extra_info.tools_kwargs !== undefined) !== tools)) throw new Error("rows mix the plain and the multi-turn tool layout");
  const columnData = [
    { name: "data_source", data: rows.map((r) => r.data_source) },
    { name: "prompt", data: rows.map((r) => r.prompt.map((m) => ({ content: m.content, role: m.role }))) },
    { name: "ability", data: rows.map((r) => r.ability) },
    {
      name: "reward_model",
      data: rows.map((r) => ({ ground_truth: { target: r.reward_model.ground_truth.target.slice() }, style: r.reward_model.style })),
    },
    {
      name: "extra_info",
      data: rows.map((r) => {
        const e = r.extra_info;
        const base = { idx: e.idx, index: BigInt(e.index), question: e.question, split: e.split };
        if (!tools) return base;
        const c = e.tools_kwargs!.search.create_kwargs;
        return {
          ...base,
          need_tools_kwargs: e.need_tools_kwargs ?? true,
          tools_kwargs: { search: { create_kwargs: { data_source: c.data_source, ground_truth: { target: c.ground_truth.target.slice() }, question: c.question } } },
        };
      }),
    },
  ];
  const buf = parquetWriteBuffer({ columnData, schema: verlParquetSchema(tools) });
  return new Uint8Array(buf);
}

/** Write veRL rows to a Parquet file atomically. */
export async function writeVerlParquet(file: string, rows: readonly VerlRow[]): Promise<void> {
  await atomicWriteFile(file, verlRowsToParquet(rows));
}

function plain(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Read any Parquet file into plain objects (INT64 as numbers). */
export async function readParquetRows(file: string): Promise<Array<Record<string, unknown>>> {
  const buf = await readFile(file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  const rows = await parquetReadObjects({ file: ab });
  return rows.map((r) => plain(r) as Record<string, unknown>);
}
