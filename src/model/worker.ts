/**
 * Worker-thread entry of a model replica (see parallel.ts): its own tfjs-wasm heap and a {@link LocalReplica},
 * driven by request messages `{ id, op, args }` and answering `{ id, ok, result | error }`.
 */
import { parentPort } from "node:worker_threads";
import type { ModelConfig } from "./config.js";
import { LocalReplica } from "./replica.js";
import { getRuntime } from "./runtime.js";
import { Transformer } from "./transformer.js";

interface Request {
  id: number;
  op: string;
  args: unknown[];
}

let replica: LocalReplica | null = null;

function transferables(v: unknown, out: ArrayBuffer[] = []): ArrayBuffer[] {
  if (v instanceof Float32Array) {
    if (v.buffer instanceof ArrayBuffer && !out.includes(v.buffer)) out.push(v.buffer);
  } else if (Array.isArray(v)) {
    for (const x of v) transferables(x, out);
  } else if (v && typeof v === "object") {
    for (const x of Object.values(v)) transferables(x, out);
  }
  return out;
}

async function handle(req: Request): Promise<unknown> {
  if (req.op === "init") {
    const [config, weights, budget] = req.args as [ModelConfig, Float32Array, number];
    const rt = await getRuntime({ threads: 1 });
    const model = await Transformer.empty(config, { runtime: rt, activationBudgetBytes: budget });
    model.setWeights(weights);
    replica = new LocalReplica(model);
    replica.returnGrads = true;
    return null;
  }
  if (!replica) throw new Error("worker replica not initialised");
  const r = replica;
  switch (req.op) {
    case "prefillSample":
      return r.prefillSampleSync(...(req.args as Parameters<LocalReplica["prefillSampleSync"]>));
    case "decodeSample":
      return r.decodeSampleSync(...(req.args as Parameters<LocalReplica["decodeSampleSync"]>));
    case "releaseSeqs":
      r.releaseSeqs(req.args[0] as number[]);
      return null;
    case "logprobs":
      return r.logprobs(req.args[0] as Parameters<LocalReplica["logprobs"]>[0]);
    case "beginTraining":
      return r.beginTraining(req.args[0] as number, req.args[1] as Parameters<LocalReplica["beginTraining"]>[1]);
    case "backward":
      return r.backward(req.args[0] as number, req.args[1] as Float32Array[]);
    case "releasePass":
      r.releasePass(req.args[0] as number);
      return null;
    case "setWeights":
      await r.setWeights(req.args[0] as Float32Array);
      return null;
    case "setTuning":
      r.model.tuning = { ...r.model.tuning, ...(req.args[0] as object) };
      return null;
    case "close":
      await r.close();
      r.model.dispose();
      replica = null;
      return null;
    default:
      throw new Error(`unknown worker op ${req.op}`);
  }
}

if (parentPort) {
  const port = parentPort;
  // Requests are handled strictly in order (each one finishes before the next starts).
  let chain: Promise<void> = Promise.resolve();
  port.on("message", (req: Request) => {
    chain = chain.then(async () => {
      try {
        const result = await handle(req);
        port.postMessage({ id: req.id, ok: true, result }, transferables(result));
      } catch (err) {
        port.postMessage({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) });
      }
    });
  });
}
