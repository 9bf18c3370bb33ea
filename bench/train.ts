/**
 * `npm run bench:train`: training and sampling throughput of the built-in model on its compute engines, side by side
 * with PyTorch + transformers (the alternative a user would pick) and llama.cpp, in one run.
 *
 * 1. Peak: one large 2-D matmul through ONNX Runtime's MLAS (the native engine's kernel, 1 and 2 threads) and through
 *    XNNPACK in tfjs-wasm (the fallback engine's kernel).
 * 2. Training: fwd + bwd + AdamW tokens/s at context 256 for ~1 M (the quickstart shape: d 128, 4 layers, vocab 2k,
 *    64 x 256 tokens), ~4 M and ~16 M parameters: native engine on one thread, the wasm engine on one thread, and on all
 *    cores (ParallelModel: one native replica per core; and one product on 2 intra-op threads); PyTorch 2.x CPU +
 *    transformers `LlamaForCausalLM` (same shapes, tied embeddings, AdamW, grad clipping) on 1 and on all threads.
 *    Effective GFLOP/s = (6·N + attention) FLOPs per token x tokens/s.
 * 3. Sampling: batched KV-cache decoding (temperature 1, top-p 0.95, 64-token prompts, 128 new tokens) vs HF
 *    `generate` on the same shapes and llama.cpp (node-llama-cpp) on the exported GGUF with the same number of
 *    sequences in one context.
 *
 * The PyTorch side runs bench/anchors/torch_llama.py with SEARCHRL_BENCH_PYTHON, else .venv-bench/bin/python, else
 * python3, when `torch` and `transformers` import; otherwise the bench says so and prints the rest. Prints a table and
 * replaces the "## Model and training" section of docs/benchmarks.md. SEARCHRL_BENCH_QUICK=1 runs a smaller version
 * (no doc update).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  AdamW,
  BatchGenerator,
  ParallelModel,
  Transformer,
  countParameters,
  exportGguf,
  getWasmRuntime,
  trainBpe,
  trainFlopsPerToken,
  type LogprobLossFn,
  type ModelConfigInput,
} from "../src/model/index.js";
import { OrtGemm, loadOrtBinding } from "../src/model/native.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const QUICK = process.env.SEARCHRL_BENCH_QUICK === "1";
const WORKERS = Math.max(0, Math.min(3, os.cpus().length - 1));

interface Row {
  section: string;
  what: string;
  value: string;
  vs: string;
  ratio: string;
  note: string;
}
const rows: Row[] = [];
const log = (s: string) => process.stdout.write(s + "\n");

// ---------------------------------------------------------------------------------------------------------------
// Matmul peak

/** MLAS sgemm through the native engine's own kernel (synchronous, on the model heap), `threads` intra-op threads. */
async function nativePeak(threads: number, M: number, K: number, N: number): Promise<number | null> {
  const ort = loadOrtBinding();
  if (!ort) return null;
  const rt = await getWasmRuntime();
  const g = new OrtGemm(ort, threads);
  const a = rt.allocF32(M * K);
  const b = rt.allocF32(K * N);
  const o = rt.allocF32(M * N);
  rt.view(a, M * K).fill(0.5);
  rt.view(b, K * N).fill(0.25);
  const heap = () => rt.f32().buffer;
  g.gemm(heap(), a, b, o, M, K, N, false, false, false);
  let best = Infinity;
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    g.gemm(heap(), a, b, o, M, K, N, false, false, false);
    best = Math.min(best, performance.now() - t0);
  }
  g.dispose();
  for (const p of [a, b, o]) rt.free(p);
  return (2 * M * K * N) / (best / 1000) / 1e9;
}

async function xnnPeak(M: number, K: number, N: number): Promise<number> {
  const rt = await getWasmRuntime();
  const a = rt.allocF32(M * K);
  const b = rt.allocF32(K * N);
  const o = rt.allocF32(M * N);
  rt.view(a, M * K).fill(0.5);
  rt.view(b, K * N).fill(0.25);
  const bId = rt.register(b, K * N);
  rt.matmulId(a, bId, o, M, K, N);
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    rt.matmulId(a, bId, o, M, K, N);
    best = Math.min(best, performance.now() - t0);
  }
  rt.unregister(bId);
  for (const p of [a, b, o]) rt.free(p);
  return (2 * M * K * N) / (best / 1000) / 1e9;
}

/**
 * How much of a second core this process can get right now: the same pure-JS loop on the main thread and on a
 * worker at once, relative to one thread alone (2.0 on an idle 2-core machine).
 */
async function twoThreadProbe(): Promise<number> {
  const { Worker } = await import("node:worker_threads");
  const body = "let x = 0; for (let i = 0; i < n; i++) x += Math.sqrt(i); return x;";
  const w = new Worker(
    `const { parentPort } = require("node:worker_threads"); parentPort.on("message", (n) => { ${body.replace("return x;", "parentPort.postMessage(x);")} });`,
    { eval: true },
  );
  const work = new Function("n", body) as (n: number) => number;
  const n = 1.5e8;
  work(n / 10);
  let t0 = performance.now();
  work(n);
  const one = performance.now() - t0;
  t0 = performance.now();
  const done = new Promise((r) => w.once("message", r));
  w.postMessage(n);
  work(n);
  await done;
  const two = performance.now() - t0;
  await w.terminate();
  return (2 * one) / two;
}

// ---------------------------------------------------------------------------------------------------------------
// Training

const nll: LogprobLossFn = (lps) => {
  let n = 0;
  for (const a of lps) n += a.length;
  let loss = 0;
  for (const a of lps) for (const x of a) loss -= x / n;
  return { loss, grad: lps.map((a) => new Float32Array(a.length).fill(-1 / n)) };
};

interface TrainCase {
  name: string;
  cfg: ModelConfigInput;
  batch: number;
  ctx: number;
  steps: number;
}

function batchOf(c: TrainCase, V: number, seed: number): number[][] {
  return Array.from({ length: c.batch }, (_, b) =>
    Array.from({ length: c.ctx }, (_, i) => (b * 7919 + i * 104729 + seed * 31) % V),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// PyTorch + transformers anchor (a child process; absent → the bench says why)

const ANCHOR = path.join(ROOT, "bench", "anchors", "torch_llama.py");
let python: string | null | undefined;
let pythonWhy = "";

function findPython(): string | null {
  if (python !== undefined) return python;
  const candidates = [
    process.env.SEARCHRL_BENCH_PYTHON,
    path.join(ROOT, ".venv-bench", "bin", "python"),
    "python3",
  ].filter((x): x is string => !!x);
  for (const py of candidates) {
    const r = spawnSync(py, ["-c", "import torch, transformers; print(torch.__version__, transformers.__version__)"], {
      encoding: "utf8",
    });
    if (r.status === 0) {
      log(`PyTorch anchor: ${py} (torch, transformers ${r.stdout.trim()})`);
      return (python = py);
    }
    pythonWhy = (r.stderr || String(r.error ?? "")).trim().split("\n").pop() ?? "";
  }
  log(`PyTorch anchor unavailable (${pythonWhy || "no python"}): install with`);
  log("  python3 -m venv .venv-bench && .venv-bench/bin/pip install torch transformers");
  return (python = null);
}

interface AnchorSpec {
  vocab: number;
  d: number;
  ffn: number;
  layers: number;
  heads: number;
  [k: string]: number;
}

function torchRun(mode: "train" | "generate", spec: AnchorSpec, threads: number): number | null {
  const py = findPython();
  if (!py) return null;
  const r = spawnSync(py, [ANCHOR, mode, JSON.stringify(spec), String(threads)], {
    encoding: "utf8",
    env: { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) },
    maxBuffer: 1 << 24,
  });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return (JSON.parse(line) as { tokens_per_s: number }).tokens_per_s;
  } catch {
    log(`  (PyTorch ${mode} failed: ${r.stderr.trim().split("\n").pop() ?? r.status})`);
    return null;
  }
}

function specOf(cfg: ModelConfigInput): AnchorSpec {
  return {
    vocab: cfg.vocabSize as number,
    d: cfg.hiddenSize as number,
    ffn: cfg.intermediateSize as number,
    layers: cfg.numLayers as number,
    heads: cfg.numHeads as number,
  };
}

const fmtRatio = (a: number, b: number | null) => (b ? `${(a / b).toFixed(2)}×` : "n/a");

// ---------------------------------------------------------------------------------------------------------------
// Training

/** How one side of the comparison runs: engine of the main thread's products, or the ParallelModel. */
type Mode = { name: string; gemm: OrtGemm | null; pm: ParallelModel | null };

async function trainCase(c: TrainCase, peak1: number | null): Promise<void> {
  const model = await Transformer.create(c.cfg, { seed: 1 });
  const rt = model.rt;
  const params = countParameters(model.config);
  const fpt = trainFlopsPerToken(model.config, c.ctx);
  const opt = new AdamW(model, { weightDecay: 0.1 });
  const tokensPerStep = c.batch * (c.ctx - 1);
  const ort = loadOrtBinding();
  const modes: Mode[] = [];
  if (ort) modes.push({ name: "native, 1 thread", gemm: new OrtGemm(ort, 1), pm: null });
  modes.push({ name: "wasm, 1 thread", gemm: null, pm: null });
  if (ort && WORKERS > 0) {
    modes.push({ name: `native, ParallelModel (${WORKERS + 1} replicas)`, gemm: modes[0].gemm, pm: null });
    modes[modes.length - 1].pm = await ParallelModel.create(model, { workers: WORKERS });
    modes.push({ name: `native, ${WORKERS + 1} intra-op threads`, gemm: new OrtGemm(ort, WORKERS + 1), pm: null });
  }
  // The modes' steps alternate (fairer on a shared machine); one warm-up step each, then the best of the timed steps.
  const best = modes.map(() => Infinity);
  for (let s = 0; s <= c.steps; s++) {
    const seqs = batchOf(c, model.config.vocabSize, s);
    for (let k = 0; k < modes.length; k++) {
      const m = modes[k];
      rt.useNative(m.gemm);
      const t0 = performance.now();
      model.zeroGrad();
      if (m.pm) await m.pm.accumulateGradients({ sequences: seqs }, nll);
      else model.accumulateGradients({ sequences: seqs }, nll);
      opt.clipGradNorm(1.0);
      opt.step(1e-3);
      if (s > 0) best[k] = Math.min(best[k], (performance.now() - t0) / 1000);
    }
  }
  rt.useNative(modes[0].gemm);
  for (const m of modes) if (m.pm) await m.pm.close();
  const tps = best.map((b) => tokensPerStep / b);
  const spec = { ...specOf(c.cfg), batch: c.batch, ctx: c.ctx, steps: c.steps };
  const torch1 = torchRun("train", spec, 1);
  const torchN = os.cpus().length > 1 ? torchRun("train", spec, os.cpus().length) : null;
  const label = `${c.name} (${(params / 1e6).toFixed(2)} M, ${c.batch}×${c.ctx})`;
  const gfl = (t: number) => (t * fpt) / 1e9;
  for (let k = 0; k < modes.length; k++) {
    const one = !modes[k].pm && !modes[k].name.includes("intra-op");
    const vs = one ? torch1 : torchN;
    log(
      `  ${label}, ${modes[k].name}: ${tps[k].toFixed(0)} tok/s (${gfl(tps[k]).toFixed(1)} GFLOP/s); ` +
        `PyTorch ${one ? "1 thread" : `${os.cpus().length} threads`} ${vs ? vs.toFixed(0) : "n/a"} → ${fmtRatio(tps[k], vs)}`,
    );
    rows.push({
      section: "train",
      what: `${label}, ${modes[k].name}`,
      value: `${tps[k].toFixed(0)} tok/s = ${gfl(tps[k]).toFixed(1)} GFLOP/s`,
      vs: `PyTorch ${one ? "1 thread" : `${os.cpus().length} threads`}: ${vs ? vs.toFixed(0) + " tok/s" : "n/a"}`,
      ratio: fmtRatio(tps[k], vs),
      note: k === 0 && peak1 ? `${((100 * gfl(tps[k])) / peak1).toFixed(0)} % of MLAS 1-thread peak` : "",
    });
  }
  for (const m of modes) if (m.gemm && m !== modes[0]) m.gemm.dispose();
  opt.dispose();
  model.dispose();
}

// ---------------------------------------------------------------------------------------------------------------
// Sampling vs HF generate and llama.cpp

async function llamaCppTokensPerSecond(file: string, prompts: number[][], newTokens: number): Promise<number | null> {
  try {
    const { getLlama } = await import("node-llama-cpp");
    const l = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
    const lm = await l.loadModel({ modelPath: file });
    const per = prompts[0].length + newTokens + 8;
    const ctx = await lm.createContext({ threads: 1, sequences: prompts.length, contextSize: per * prompts.length });
    const seqs = prompts.map(() => ctx.getSequence());
    const t0 = performance.now();
    const counts = await Promise.all(
      seqs.map(async (seq, i) => {
        let n = 0;
        for await (const _t of seq.evaluate(prompts[i] as never, { temperature: 1, topP: 0.95, seed: i } as never)) {
          if (++n >= newTokens) break;
        }
        return n;
      }),
    );
    const tps = counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000);
    await ctx.dispose();
    await lm.dispose();
    await l.dispose();
    return tps;
  } catch (err) {
    log(`  (node-llama-cpp unavailable: ${(err as Error).message.split("\n")[0]})`);
    return null;
  }
}

async function decodeCase(
  name: string,
  cfg: ModelConfigInput,
  corpus: string[],
  seqs: number,
  prompt: number,
  newTokens: number,
): Promise<void> {
  const vocab = (cfg.vocabSize as number) ?? 2048;
  const tok = trainBpe(corpus, { vocabSize: vocab, specialTokens: ["<|endoftext|>"], minFrequency: 1 });
  const model = await Transformer.create({ ...cfg, vocabSize: tok.vocabSize }, { seed: 2 });
  const V = model.config.vocabSize;
  const prompts = Array.from({ length: seqs }, (_, b) =>
    Array.from({ length: prompt }, (_, i) => (b * 131 + i * 17) % (V - 1)),
  );
  const params = { temperature: 1, topP: 0.95, maxTokens: newTokens, stop: [] as string[] };
  const measure = async (g: BatchGenerator): Promise<number> => {
    await g.generateBatch(
      prompts.slice(0, 2).map((t, i) => ({ tokens: t, params: { ...params, maxTokens: 4, seed: i } })),
    );
    let best = 0;
    for (let r = 0; r < 2; r++) {
      const t0 = performance.now();
      const outs = await g.generateBatch(prompts.map((t, i) => ({ tokens: t, params: { ...params, seed: i } })));
      const dt = (performance.now() - t0) / 1000;
      best = Math.max(best, outs.reduce((a, o) => a + o.tokens.length, 0) / dt);
    }
    return best;
  };
  const g1 = new BatchGenerator(model, tok, { maxBatch: seqs });
  const ours = await measure(g1);
  g1.close();
  let oursPar = 0;
  if (WORKERS > 0) {
    const pm = await ParallelModel.create(model, { workers: WORKERS });
    const g2 = new BatchGenerator(pm, tok, { maxBatch: seqs });
    oursPar = await measure(g2);
    g2.close();
    await pm.close();
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "searchrl-bench-"));
  let llama: number | null = null;
  try {
    const file = path.join(dir, "m.gguf");
    await exportGguf(model, tok, file);
    llama = await llamaCppTokensPerSecond(file, prompts, newTokens);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const spec = { ...specOf({ ...cfg, vocabSize: V }), seqs, prompt, new: newTokens };
  const hf1 = torchRun("generate", spec, 1);
  const hfN = os.cpus().length > 1 ? torchRun("generate", spec, os.cpus().length) : null;
  const params_ = countParameters(model.config);
  const label = `${name} (${(params_ / 1e6).toFixed(2)} M), ${seqs} seqs × ${newTokens} new tokens`;
  log(
    `  ${label}: ${ours.toFixed(0)} tok/s 1 thread (HF generate ${hf1?.toFixed(0) ?? "n/a"} → ${fmtRatio(ours, hf1)}; ` +
      `llama.cpp ${seqs} seqs ${llama?.toFixed(0) ?? "n/a"} → ${fmtRatio(ours, llama)})` +
      (oursPar
        ? `; ${oursPar.toFixed(0)} tok/s ParallelModel (HF ${hfN?.toFixed(0) ?? "n/a"} → ${fmtRatio(oursPar, hfN)})`
        : ""),
  );
  rows.push({
    section: "decode",
    what: `${label}, 1 thread`,
    value: `${ours.toFixed(0)} tok/s`,
    vs: `HF generate 1 thread: ${hf1 ? hf1.toFixed(0) + " tok/s" : "n/a"}`,
    ratio: fmtRatio(ours, hf1),
    note: "prefill included",
  });
  rows.push({
    section: "decode",
    what: `${label}, 1 thread`,
    value: `${ours.toFixed(0)} tok/s`,
    vs: `llama.cpp (exported GGUF), ${seqs} sequences in one context, threads 1: ${llama ? llama.toFixed(0) + " tok/s" : "n/a"}`,
    ratio: fmtRatio(ours, llama),
    note: "",
  });
  if (oursPar) {
    rows.push({
      section: "decode",
      what: `${label}, ParallelModel (${WORKERS + 1} replicas)`,
      value: `${oursPar.toFixed(0)} tok/s`,
      vs: `HF generate ${os.cpus().length} threads: ${hfN ? hfN.toFixed(0) + " tok/s" : "n/a"}`,
      ratio: fmtRatio(oursPar, hfN),
      note: "",
    });
  }
  model.dispose();
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = Date.now();
  const load0 = os.loadavg();
  const rt = await getWasmRuntime();
  log(
    `bench:train on ${os.cpus()[0]?.model ?? "?"} x ${os.cpus().length}, Node ${process.version}, load ${load0.map((x) => x.toFixed(1)).join(" ")}; engine ${rt.engineName}`,
  );
  const probe0 = await twoThreadProbe();
  log(`two threads of plain JS ran at ${probe0.toFixed(2)}x one thread (2.00 = a free second core)`);
  findPython();
  log("matmul peak:");
  const peakXnn = await xnnPeak(2048, 512, 512);
  const mlas1 = await nativePeak(1, 1024, 512, 1536);
  const mlas2 = os.cpus().length > 1 ? await nativePeak(2, 1024, 512, 1536) : null;
  log(
    `  MLAS (native engine) 1 thread ${mlas1?.toFixed(1) ?? "n/a"}, 2 threads ${mlas2?.toFixed(1) ?? "n/a"} GFLOP/s; XNNPACK (tfjs-wasm) ${peakXnn.toFixed(1)} GFLOP/s`,
  );
  rows.push({
    section: "peak",
    what: "2-D sgemm 1024×512×1536 (the ~16 M model's gate/up shape), ONNX Runtime MLAS, 1 thread",
    value: `${mlas1?.toFixed(1) ?? "n/a"} GFLOP/s`,
    vs: `XNNPACK in tfjs-wasm (2048×512×512): ${peakXnn.toFixed(1)} GFLOP/s`,
    ratio: mlas1 ? fmtRatio(mlas1, peakXnn) : "n/a",
    note: mlas2 ? `MLAS 2 threads ${mlas2.toFixed(1)} GFLOP/s` : "",
  });

  log("training (fwd + bwd + AdamW):");
  const cases: TrainCase[] = [
    {
      name: "quickstart ~1M",
      cfg: { vocabSize: 2048, hiddenSize: 128, intermediateSize: 352, numLayers: 4, numHeads: 4, maxPositions: 256 },
      batch: QUICK ? 8 : 64,
      ctx: 256,
      steps: QUICK ? 1 : 3,
    },
    {
      name: "~4M",
      cfg: { vocabSize: 2048, hiddenSize: 256, intermediateSize: 688, numLayers: 4, numHeads: 8, maxPositions: 256 },
      batch: QUICK ? 4 : 16,
      ctx: 256,
      steps: QUICK ? 1 : 3,
    },
  ];
  if (!QUICK) {
    cases.push({
      name: "~16M",
      cfg: { vocabSize: 4096, hiddenSize: 512, intermediateSize: 1536, numLayers: 4, numHeads: 8, maxPositions: 256 },
      batch: 4,
      ctx: 256,
      steps: 2,
    });
  }
  for (const c of cases) await trainCase(c, mlas1);

  log("sampling (batched KV cache) vs HF generate and llama.cpp:");
  const corpus = readFileSync(path.join(ROOT, "data/r1-searcher/training_set/stage_2.jsonl"), "utf8")
    .split("\n")
    .slice(0, 3000)
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { question: string; answer: string }).question + "\n");
  await decodeCase(
    "quickstart ~1M",
    { vocabSize: 2048, hiddenSize: 128, intermediateSize: 352, numLayers: 4, numHeads: 4, maxPositions: 256 },
    corpus,
    QUICK ? 16 : 128,
    64,
    QUICK ? 32 : 128,
  );
  if (!QUICK) {
    await decodeCase(
      "~4M",
      { vocabSize: 2048, hiddenSize: 256, intermediateSize: 688, numLayers: 4, numHeads: 8, maxPositions: 256 },
      corpus,
      64,
      64,
      128,
    );
  }
  const load1 = os.loadavg();
  const probe1 = await twoThreadProbe();
  log(`two threads of plain JS ran at ${probe1.toFixed(2)}x one thread at the end`);
  const secs = (Date.now() - t0) / 1000;
  const table = [
    "| what | measured | compared with | ratio | note |",
    "|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.what} | ${r.value} | ${r.vs} | ${r.ratio} | ${r.note} |`),
  ].join("\n");
  log("\n" + table);
  log(`\n${secs.toFixed(0)} s total`);
  if (QUICK) return;
  const contended = Math.max(...load0, ...load1) > os.cpus().length * 0.75;
  const section = [
    "## Model and training",
    "",
    "`npm run bench:train` (bench/train.ts). The built-in model on its native engine (ONNX Runtime's MLAS sgemm on the",
    "model's heap, wasm SIMD elementwise kernels, hand-written backward) and on the tfjs-wasm fallback, fwd + bwd + AdamW",
    "at context 256 and batched KV-cache sampling, side by side in one run with PyTorch + transformers `LlamaForCausalLM`",
    "(bench/anchors/torch_llama.py: same shapes, tied embeddings, AdamW, clipping; `generate` with the same sampling) and",
    "llama.cpp decoding the exported GGUF with the same number of sequences. GFLOP/s = (6·params + attention) FLOPs per",
    "token × tokens/s. ParallelModel = the batch sharded over worker threads (one heap and native engine each).",
    `Measured on ${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} cores, Node ${process.version}, load average ${load0
      .map((x) => x.toFixed(1))
      .join(
        " ",
      )} → ${load1.map((x) => x.toFixed(1)).join(" ")}${contended ? " (contended: other jobs shared the cores)" : ""}, ${new Date().toISOString().slice(0, 10)}, ${secs.toFixed(0)} s.`,
    `Second core: two threads of plain JS ran at ${probe0.toFixed(2)}x / ${probe1.toFixed(2)}x one thread at the start / end of the run`,
    "(2.00 = idle second core; a snapshot — the modes' steps alternate so all see similar load).",
    "",
    table,
    "",
    ...(Math.min(probe0, probe1) < 1.5
      ? [
          `**The second core was busy during this run** (probe ${probe0.toFixed(2)}x / ${probe1.toFixed(2)}x): the rows on two`,
          "threads and the ratios against PyTorch/HF on two threads are not a valid comparison (PyTorch's OpenMP threads",
          "wait on each other and collapse when a core is taken); the one-thread rows are, since both sides ran under the",
          "same load. Rerun on an idle machine for the two-thread figures.",
          "",
        ]
      : []),
    'See docs/model.md ("Compute engines") for why the native engine is ONNX Runtime\'s MLAS and where the remaining time goes.',
    "",
  ].join("\n");
  writeSection(path.join(ROOT, "docs", "benchmarks.md"), section);
}

/** Replace (or append) the "## Model and training" section of docs/benchmarks.md, leaving the other sections as they are. */
function writeSection(file: string, section: string): void {
  let text = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n\n";
  const start = text.search(/^## Model and training\s*$/m);
  if (start >= 0) {
    const rest = text.slice(start + 1);
    const nextRel = rest.search(/^## /m);
    const end = nextRel >= 0 ? start + 1 + nextRel : text.length;
    text = text.slice(0, start) + section + (end < text.length ? "\n" + text.slice(end) : "");
  } else {
    text = text.replace(/\n*$/, "\n\n") + section;
  }
  writeFileSync(file, text);
}

await main();
