/**
 * Checkpoints: safetensors/config.json export and import (bit-exact round trip, sharded, bf16), the Hugging Face
 * layout checked by an independent forward written in HF conventions ([out, in] weights, rotate-half RoPE), and
 * optimizer state save/restore.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  AdamW,
  Transformer,
  exportHfTensors,
  loadCheckpoint,
  readSafetensors,
  saveCheckpoint,
  writeSafetensors,
  type ModelConfig,
} from "../src/model/index.js";
import { SafetensorsFile, f16ToF32, f32ToBf16, f32ToF16 } from "../src/model/safetensors.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "searchrl-ckpt-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CFG = {
  architecture: "qwen2" as const,
  vocabSize: 47,
  hiddenSize: 32,
  intermediateSize: 40,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  maxPositions: 64,
  attentionBias: true,
  tieEmbeddings: false,
  eosTokenIds: [3],
  bosTokenId: 1,
};

/** A forward pass written in Hugging Face conventions over HF-named tensors (as transformers computes it). */
function hfForward(cfg: ModelConfig, t: Map<string, Float32Array>, tokens: number[]): Float64Array[] {
  const d = cfg.hiddenSize;
  const dh = cfg.headDim;
  const H = cfg.numHeads;
  const Hkv = cfg.numKvHeads;
  const ffn = cfg.intermediateSize;
  const lin = (x: Float64Array, w: Float32Array, out: number, inDim: number, b?: Float32Array): Float64Array => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inDim; i++) s += w[o * inDim + i] * x[i];
      y[o] = s;
    }
    return y;
  };
  const norm = (x: Float64Array, g: Float32Array): Float64Array => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const r = 1 / Math.sqrt(ss / x.length + cfg.rmsNormEps);
    return x.map((v, i) => v * r * g[i]);
  };
  const ropeHalf = (v: Float64Array, off: number, pos: number): void => {
    const half = dh / 2;
    const x = v.slice(off, off + dh);
    for (let i = 0; i < dh; i++) {
      const f = Math.pow(cfg.ropeTheta, (-2 * (i % half)) / dh) * pos;
      const rot = i < half ? -x[i + half] : x[i - half];
      v[off + i] = x[i] * Math.cos(f) + rot * Math.sin(f);
    }
  };
  const get = (n: string): Float32Array => {
    const v = t.get(n);
    if (!v) throw new Error(`missing ${n}`);
    return v;
  };
  const E = get("model.embed_tokens.weight");
  let xs = tokens.map((tk) => Float64Array.from(E.subarray(tk * d, (tk + 1) * d)));
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const qkv = xs.map((x, pos) => {
      const xn = norm(x, get(p + "input_layernorm.weight"));
      const q = lin(xn, get(p + "self_attn.q_proj.weight"), H * dh, d, t.get(p + "self_attn.q_proj.bias"));
      const k = lin(xn, get(p + "self_attn.k_proj.weight"), Hkv * dh, d, t.get(p + "self_attn.k_proj.bias"));
      const v = lin(xn, get(p + "self_attn.v_proj.weight"), Hkv * dh, d, t.get(p + "self_attn.v_proj.bias"));
      for (let h = 0; h < H; h++) ropeHalf(q, h * dh, pos);
      for (let h = 0; h < Hkv; h++) ropeHalf(k, h * dh, pos);
      return { q, k, v };
    });
    xs = xs.map((x, pos) => {
      const att = new Float64Array(H * dh);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / Hkv));
        const sc: number[] = [];
        for (let j = 0; j <= pos; j++) {
          let s = 0;
          for (let e = 0; e < dh; e++) s += qkv[pos].q[h * dh + e] * qkv[j].k[g * dh + e];
          sc.push(s / Math.sqrt(dh));
        }
        const m = Math.max(...sc);
        const ex = sc.map((s) => Math.exp(s - m));
        const z = ex.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= pos; j++)
          for (let e = 0; e < dh; e++) att[h * dh + e] += (ex[j] / z) * qkv[j].v[g * dh + e];
      }
      const o = lin(att, get(p + "self_attn.o_proj.weight"), d, H * dh);
      const x2 = x.map((v, i) => v + o[i]);
      const xn2 = norm(x2, get(p + "post_attention_layernorm.weight"));
      const gt = lin(xn2, get(p + "mlp.gate_proj.weight"), ffn, d);
      const up = lin(xn2, get(p + "mlp.up_proj.weight"), ffn, d);
      const a = gt.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const dn = lin(a, get(p + "mlp.down_proj.weight"), d, ffn);
      return x2.map((v, i) => v + dn[i]);
    });
  }
  const head = t.get("lm_head.weight") ?? E;
  return xs.map((x) => lin(norm(x, get("model.norm.weight")), head, cfg.vocabSize, d));
}

async function randomModel(seed: number): Promise<Transformer> {
  const m = await Transformer.create(CFG, { seed, initStd: 0.2 });
  const W = m.weights();
  for (const e of m.params) {
    if (e.name.endsWith("norm") || e.name.endsWith("bqkv"))
      for (let i = 0; i < e.size; i++) W[e.offset + i] += 0.3 * Math.sin(i + e.offset);
  }
  m.markWeightsChanged();
  return m;
}

describe("checkpoints", () => {
  it("exported HF tensors compute the same function in Hugging Face conventions", async () => {
    const m = await randomModel(1);
    const tensors = new Map(exportHfTensors(m).map((t) => [t.name, t.data]));
    const toks = [1, 4, 9, 16, 25, 36, 2, 7];
    const ref = hfForward(m.config, tensors, toks);
    const got = m.logitsAll(toks);
    let md = 0;
    for (let i = 0; i < toks.length; i++)
      for (let v = 0; v < CFG.vocabSize; v++) md = Math.max(md, Math.abs(ref[i][v] - got[i][v]));
    expect(md).toBeLessThan(1e-4);
    m.dispose();
  });

  it("save -> load is bit-exact (single file and shards) and writes a HF folder", async () => {
    const m = await randomModel(2);
    const tokJson = {
      model: { type: "BPE", vocab: { a: 0 } },
      added_tokens: [{ id: 3, content: "<|endoftext|>", special: true }],
    };
    for (const shard of [undefined, 20_000]) {
      const dir = path.join(tmp, `m-${shard ?? "one"}`);
      await saveCheckpoint(m, dir, {
        tokenizerJson: tokJson,
        maxShardBytes: shard,
        extraFiles: { "trainer_state.json": "{}" },
      });
      const files = readdirSync(dir);
      expect(files).toContain("config.json");
      expect(files).toContain("tokenizer.json");
      expect(files).toContain("trainer_state.json");
      if (shard) expect(files).toContain("model.safetensors.index.json");
      else expect(files).toContain("model.safetensors");
      const cfg = JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8"));
      expect(cfg.architectures).toEqual(["Qwen2ForCausalLM"]);
      expect(cfg.num_key_value_heads).toBe(2);
      expect(cfg.eos_token_id).toBe(3);
      expect(JSON.parse(readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")).eos_token).toBe("<|endoftext|>");
      const back = await loadCheckpoint(dir);
      expect(back.config).toEqual(m.config);
      const a = m.getWeights();
      const b = back.getWeights();
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
      back.dispose();
    }
    // No temp folders left next to the target.
    expect(readdirSync(tmp).filter((f) => f.startsWith("."))).toEqual([]);
    m.dispose();
  });

  it("imports bf16 and f16 checkpoints (rounded weights)", async () => {
    const m = await randomModel(3);
    const a = m.getWeights();
    for (const dtype of ["bfloat16", "float16"] as const) {
      const dir = path.join(tmp, dtype);
      await saveCheckpoint(m, dir, { dtype });
      const st = new SafetensorsFile(path.join(dir, "model.safetensors"));
      expect(st.info("model.norm.weight").dtype).toBe(dtype === "bfloat16" ? "BF16" : "F16");
      st.close();
      const back = await loadCheckpoint(dir);
      const b = back.getWeights();
      const u = new Uint32Array(1);
      const f = new Float32Array(u.buffer);
      for (let i = 0; i < a.length; i += 97) {
        if (dtype === "bfloat16") {
          u[0] = f32ToBf16(a[i]) << 16;
          expect(b[i]).toBe(f[0]);
        } else {
          expect(b[i]).toBe(f16ToF32(f32ToF16(a[i])));
          expect(Math.abs(b[i] - a[i])).toBeLessThanOrEqual(Math.abs(a[i]) * 2 ** -11 + 2 ** -24);
        }
      }
      back.dispose();
    }
    m.dispose();
  });

  it("safetensors writer output is valid for other readers (header, offsets, metadata)", () => {
    const data = Float32Array.from([1, -2, 3.5, 1e-30]);
    const bytes = writeSafetensors([{ name: "x", dtype: "F32", shape: [2, 2], data }], { format: "pt" });
    const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(hlen % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
    expect(header.x).toEqual({ dtype: "F32", shape: [2, 2], data_offsets: [0, 16] });
    expect(header.__metadata__).toEqual({ format: "pt" });
    const r = readSafetensors(bytes);
    expect(Array.from(r.tensor("x").toFloat32())).toEqual(Array.from(data));
    expect(() => readSafetensors(bytes.subarray(0, 20))).toThrow();
  });

  it("gives clear errors for missing or inconsistent folders", async () => {
    await expect(loadCheckpoint(path.join(tmp, "nope"))).rejects.toThrow(/config.json/);
    const dir = path.join(tmp, "bad");
    const m = await randomModel(4);
    await saveCheckpoint(m, dir);
    const cfg = JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8"));
    cfg.hidden_size = 64;
    writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg));
    await expect(loadCheckpoint(dir)).rejects.toThrow(/shape/);
    m.dispose();
  });
});

describe("AdamW state", () => {
  it("save/load resumes to identical weights", async () => {
    const seqs = [
      [1, 2, 3, 4, 5, 6, 7, 8],
      [8, 7, 6, 5, 4, 3],
    ];
    const loss = (lps: Float32Array[]) => {
      let l = 0;
      for (const a of lps) for (const x of a) l -= x;
      return { loss: l, grad: lps.map((a) => new Float32Array(a.length).fill(-1)) };
    };
    const step = (m: Transformer, o: AdamW) => {
      m.zeroGrad();
      m.accumulateGradients({ sequences: seqs }, loss);
      const n = o.clipGradNorm(1.0);
      expect(Number.isFinite(n)).toBe(true);
      o.step(1e-2);
    };
    const a = await randomModel(5);
    const oa = new AdamW(a, { weightDecay: 0.1 });
    step(a, oa);
    step(a, oa);
    const dir = path.join(tmp, "resume");
    await saveCheckpoint(a, dir, { optimizer: oa });
    expect(existsSync(path.join(dir, "optimizer.safetensors"))).toBe(true);
    const b = await loadCheckpoint(dir);
    const ob = new AdamW(b, { weightDecay: 0.1 });
    await ob.load(path.join(dir, "optimizer.safetensors"));
    expect(ob.stepCount).toBe(2);
    step(a, oa);
    step(b, ob);
    expect(Buffer.from(b.getWeights().buffer).equals(Buffer.from(a.getWeights().buffer))).toBe(true);
    // A fresh optimizer (no state) would diverge: the state matters.
    const c = await loadCheckpoint(dir);
    const oc = new AdamW(c, { weightDecay: 0.1 });
    step(c, oc);
    expect(Buffer.from(c.getWeights().buffer).equals(Buffer.from(a.getWeights().buffer))).toBe(false);
    for (const m of [a, b, c]) m.dispose();
  });
});
