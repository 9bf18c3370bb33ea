/**
 * End-to-end on a tiny model: it overfits a tiny dataset with AdamW (loss falls), then greedy KV-cache sampling
 * reproduces the memorised text, stop strings spanning several tokens cut the text and keep the tokens, EOS ends a
 * generation, and seeded sampling is deterministic whatever else is in the batch.
 */
import { describe, expect, it } from "vitest";
import { AdamW, BatchGenerator, Transformer, trainBpe, type LogprobLossFn } from "../src/model/index.js";

const DATA = [
  "Question: who wrote Hamlet? Answer: William Shakespeare.",
  "Question: what is the capital of France? Answer: Paris.",
  "Question: who painted the Mona Lisa? Answer: Leonardo da Vinci.",
  "Question: what is the largest planet? Answer: Jupiter.",
];

/** Mean negative log-likelihood over all predicted tokens. */
const nll: LogprobLossFn = (lps) => {
  let n = 0;
  for (const a of lps) n += a.length;
  let loss = 0;
  for (const a of lps) for (const x of a) loss -= x / n;
  return { loss, grad: lps.map((a) => new Float32Array(a.length).fill(-1 / n)) };
};

describe("tiny model", async () => {
  const tok = trainBpe(
    [...DATA, ...DATA].map((s) => s + "\n"),
    { vocabSize: 300, specialTokens: ["<|endoftext|>"], minFrequency: 1 },
  );
  const eos = tok.eosTokenIds[0];
  const seqs = DATA.map((s) => [...tok.encode(s), eos]);
  const model = await Transformer.create(
    {
      vocabSize: tok.vocabSize,
      hiddenSize: 64,
      intermediateSize: 128,
      numLayers: 2,
      numHeads: 4,
      maxPositions: 128,
      eosTokenIds: [eos],
    },
    { seed: 1 },
  );
  const opt = new AdamW(model, { weightDecay: 0.01 });
  const losses: number[] = [];
  for (let step = 0; step < 120; step++) {
    model.zeroGrad();
    const r = model.accumulateGradients({ sequences: seqs }, nll);
    opt.clipGradNorm(1.0);
    opt.step(3e-3);
    losses.push(r.loss);
  }
  const gen = new BatchGenerator(model, tok, { maxBatch: 8 });

  it("overfits: the loss falls from ~ln(V) to near zero", () => {
    expect(losses[0]).toBeGreaterThan(4);
    expect(losses[losses.length - 1]).toBeLessThan(0.1);
  });

  it("greedy sampling reproduces the memorised answers and stops at EOS", async () => {
    const outs = await gen.generateBatch(
      DATA.map((s) => ({
        tokens: tok.encode(s.slice(0, s.indexOf("Answer:") + "Answer:".length)),
        params: { temperature: 0, topP: 1, maxTokens: 40, stop: [] },
      })),
    );
    outs.forEach((o, i) => {
      expect(o.finishReason).toBe("eos");
      expect(o.tokens[o.tokens.length - 1]).toBe(eos);
      expect(o.text).toBe(DATA[i].slice(DATA[i].indexOf("Answer:") + "Answer:".length));
      expect(o.logprobs).toHaveLength(o.tokens.length);
      for (const lp of o.logprobs!) expect(lp).toBeGreaterThan(-0.5);
    });
  });

  it("a stop string spelled by several tokens: tokens kept, text cut before it, streaming never shows it", async () => {
    const prompt = tok.encode("Question: who painted the Mona Lisa? Answer:");
    const stop = "da Vin";
    const full = " Leonardo da Vinci.";
    const target = tok.encode(full);
    // The stop string spans more than one token of the continuation.
    let acc = "";
    let firstEnd = -1;
    for (let i = 0; i < target.length; i++) {
      acc = tok.decode(target.slice(0, i + 1));
      if (acc.includes(stop)) {
        firstEnd = i;
        break;
      }
    }
    expect(firstEnd).toBeGreaterThan(0);
    const pieces: string[] = [];
    const o = await gen.generate({
      tokens: prompt,
      params: { temperature: 0, topP: 1, maxTokens: 40, stop: ["never", stop] },
      onText: (d) => pieces.push(d),
    });
    expect(o.finishReason).toBe("stop");
    expect(o.stopString).toBe(stop);
    expect(o.text).toBe(" Leonardo ");
    expect(o.tokens).toEqual(target.slice(0, firstEnd + 1));
    expect(pieces.join("")).toBe(" Leonardo ");
  });

  it("length limit and seeded determinism independent of the batch", async () => {
    const prompt = tok.encode("Question:");
    const p = { temperature: 1.5, topP: 0.95, topK: 50, maxTokens: 6, stop: [], seed: 42 };
    const alone = await gen.generate({ tokens: prompt, params: p });
    const others = DATA.map((s, i) => ({
      tokens: tok.encode(s.slice(0, 12 + i)),
      params: { ...p, seed: i, maxTokens: 9 },
    }));
    const mixed = await gen.generateBatch([...others, { tokens: prompt, params: p }]);
    expect(mixed[DATA.length].tokens).toEqual(alone.tokens);
    // Same tokens; log-probs equal up to float rounding (the native sgemm's summation order may depend on how many rows
    // a product has, so a sequence's logits can differ in the last bits with the batch it runs in).
    const lpMixed = mixed[DATA.length].logprobs ?? [];
    const lpAlone = alone.logprobs ?? [];
    expect(lpMixed.length).toBe(lpAlone.length);
    lpMixed.forEach((x, i) => expect(Math.abs(x - lpAlone[i])).toBeLessThan(1e-5));
    expect(alone.tokens.length).toBeLessThanOrEqual(6);
    if (alone.finishReason === "length") expect(alone.tokens.length).toBe(6);
    const other = await gen.generate({ tokens: prompt, params: { ...p, seed: 43, maxTokens: 30 } });
    const again = await gen.generate({ tokens: prompt, params: { ...p, seed: 43, maxTokens: 30 } });
    expect(again.tokens).toEqual(other.tokens);
  });

  it("concurrent generate calls are batched together", async () => {
    const before = { ...gen.stats };
    const prompt = tok.encode("Question: what is");
    const outs = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        gen.generate({ tokens: prompt, params: { temperature: 0, topP: 1, maxTokens: 10, stop: [], seed: i } }),
      ),
    );
    for (const o of outs) expect(o.tokens).toEqual(outs[0].tokens);
    const steps = gen.stats.steps - before.steps;
    const tokens = gen.stats.decodeTokens - before.decodeTokens;
    // Six sequences share each decode step.
    expect(tokens).toBeGreaterThanOrEqual(5 * steps);
  });
});
