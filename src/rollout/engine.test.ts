/**
 * The rollout engine against a scripted OpenAI-compatible server on loopback (a test double implementing vLLM's real
 * response shapes) and the real R1-Searcher / R1-Searcher++ protocols.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createOpenAIBackend } from "../llm/openai.js";
import {
  EOS,
  scriptedLogprob,
  startScriptedOpenAIServer,
  type ScriptFn,
  type ScriptedServer,
} from "../llm/testing/scripted-openai-server.js";
import { TEST_PIECES, VocabTokenizer } from "../llm/testing/vocab-tokenizer.js";
import type { GenerateRequest, GenerateResult, LLMBackend } from "../llm/types.js";
import { getProtocol } from "../protocol/index.js";
import { countOccurrences } from "../util/pystr.js";
import type { Passage } from "../util/types.js";
import { createRolloutEngine, runRollouts, runTrajectory, upstreamPredAnswer } from "./engine.js";
import type { RolloutEngineOptions } from "./options.js";
import { encodeResponseWithMask, maskFromSpans } from "./mask.js";
import { KeywordRetriever } from "./testing/keyword-retriever.js";
import type { RolloutEvent, Trajectory } from "./types.js";

const tok = new VocabTokenizer(TEST_PIECES);
const r1 = getProtocol("r1-searcher");
const PASSAGES: Passage[] = [
  { id: "1", title: "Paris", text: "Paris is the capital of France." },
  { id: "2", title: "France", text: "France is a country in Europe." },
  { id: "3", title: "Berlin", text: "Berlin is the capital of Germany." },
];

let servers: ScriptedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

/** Script by turn: the number of document blocks already in the sequence selects the segment. */
function byTurn(segments: string[]): ScriptFn {
  return (prompt) => segments[Math.min(countOccurrences(prompt, "<|begin_of_documents|>\n"), segments.length - 1)];
}

async function setup(
  script: ScriptFn,
  over: Partial<RolloutEngineOptions> = {},
  server: Partial<Parameters<typeof startScriptedOpenAIServer>[0]> = {},
) {
  const srv = await startScriptedOpenAIServer({ tokenizer: tok, script, ...server });
  servers.push(srv);
  const backend = createOpenAIBackend({ baseUrl: srv.url, model: "m", tokenizer: tok, backoffMs: 1, attempts: 2 });
  const retriever = new KeywordRetriever(PASSAGES);
  const events: RolloutEvent[] = [];
  const opts: RolloutEngineOptions = {
    protocol: r1,
    backend,
    retriever,
    mode: "train",
    onEvent: (e) => events.push(e),
    retries: { backoffMs: 1 },
    ...over,
  };
  return { srv, backend, retriever, events, opts };
}

function checkInvariants(t: Trajectory): void {
  expect(t.mask).toHaveLength(t.responseTokens.length);
  expect(t.logprobs).toHaveLength(t.responseTokens.length);
  expect(tok.decode(t.responseTokens)).toBe(t.responseText);
  t.mask.forEach((m, i) => expect(Number.isNaN(t.logprobs[i])).toBe(m === 0));
}

describe("rollout engine, training mode (token-in/token-out)", () => {
  it("keeps sampled ids across a split stop string, inserts the documents after them and masks them", async () => {
    const seg0 = ' I need to search <|begin_of_query|>  capital of "France" <|end_of_query|>\n\nignored';
    const seg1 = " the capital is Paris </think>\n\n<answer> Paris</answer>" + EOS;
    const { srv, events, opts } = await setup(byTurn([seg0, seg1]));
    const t = await runTrajectory({
      ...opts,
      item: { id: "q1", question: "What is the capital of France?", gold: "Paris" },
    });
    checkInvariants(t);
    expect(t.finish).toBe("answer");
    expect(t.answer).toBe(" Paris");
    expect(t.retrievals).toBe(1);
    expect(t.queries).toEqual(["capital of France"]); // training sanitization: quotes removed, stripped, collapsed
    expect(t.documents[0].map((p) => p.id)).toHaveLength(3);
    expect(t.documents[0][0].id).toBe("1");
    expect(t.turns).toBe(2);
    // The token that completed the stop string ("|>\n\n") carried "\n\n": the environment does not insert it again.
    const expectedObs = r1.renderObservation(t.documents[0]).slice(2);
    expect(t.responseText).toBe(
      ' I need to search <|begin_of_query|>  capital of "France" <|end_of_query|>\n\n' +
        expectedObs +
        " the capital is Paris </think>\n\n<answer> Paris</answer>",
    );
    // Segments' ids are exactly what the server sampled, with their log-probs; inserted ids are the observation's.
    const seg0Ids = tok.encode(seg0.slice(0, seg0.indexOf("|>\n\n") + 4));
    const obsIds = tok.encode(expectedObs);
    const seg1Ids = [...tok.encode(seg1.slice(0, seg1.indexOf(EOS))), tok.eosTokenIds[0]];
    expect(t.responseTokens).toEqual([...seg0Ids, ...obsIds, ...seg1Ids]);
    expect(t.mask).toEqual([...seg0Ids.map(() => 1), ...obsIds.map(() => 0), ...seg1Ids.map(() => 1)]);
    expect(t.logprobs.slice(0, seg0Ids.length)).toEqual(seg0Ids.map((id, i) => scriptedLogprob(i, id)));
    expect(t.logprobs.slice(-seg1Ids.length)).toEqual(seg1Ids.map((id, i) => scriptedLogprob(i, id)));
    // The second request continued from the exact ids (no re-tokenization), with training sampling and stop strings.
    expect(srv.requests[1].body.prompt).toEqual([...t.promptTokens, ...seg0Ids, ...obsIds]);
    expect(srv.requests[0].body.stop).toEqual(["<|end_of_query|>"]);
    expect(srv.requests[0].body.temperature).toBe(1);
    expect(srv.requests[0].body.top_p).toBe(0.95);
    expect(srv.requests[0].body.max_tokens).toBe(512);
    // Events: in order; text deltas + observations rebuild the response text.
    const types = events.map((e) => e.type);
    expect(types[0]).toBe("start");
    expect(types.slice(-2)).toEqual(["answer", "done"]);
    expect(types.indexOf("query")).toBeLessThan(types.indexOf("documents"));
    let rebuilt = "";
    for (const e of events) {
      if (e.type === "text") rebuilt += e.delta;
      if (e.type === "documents") rebuilt += e.observation ?? "";
    }
    expect(rebuilt).toBe(t.responseText);
    // The text-only mask helper finds the same environment span (document block) in the text.
    const re = encodeResponseWithMask(r1, tok, t.responseText);
    const envText = tok.decode(re.tokens.filter((_, i) => re.mask[i] === 0));
    expect(envText).toBe(expectedObs.slice(0));
    expect(envText.startsWith("<|begin_of_documents|>")).toBe(true);
    const spans = r1.parse(t.responseText).environmentSpans;
    expect(maskFromSpans(tok, t.responseTokens, spans)).toEqual(t.mask);
  });

  it("ends on an empty query, an unclosed query at EOS, EOS mid-segment and the token cap", async () => {
    const cases: Array<[string, string, Trajectory["finish"]]> = [
      ["empty", " search <|begin_of_query|>   <|end_of_query|>", "empty_query"],
      ["unclosed", " search <|begin_of_query|> capital" + EOS, "eos"],
      ["eos", " Let me think" + EOS, "eos"],
      ["length", " the".repeat(30), "length"],
    ];
    const { opts } = await setup((p) => cases.find((c) => p.includes(`Q-${c[0]}`))![1], {
      limits: { segmentMaxTokens: 20 },
    });
    const ts = await runRollouts({ ...opts, items: cases.map(([name]) => ({ id: name, question: `Q-${name}` })) });
    for (const [i, t] of ts.entries()) {
      checkInvariants(t);
      expect(t.finish, cases[i][0]).toBe(cases[i][2]);
      expect(t.retrievals).toBe(0);
      expect(t.answer).toBeNull();
    }
  });

  it("an answer inside retrieved documents is neither an answer nor a tag", async () => {
    const { opts, retriever } = await setup(byTurn([" <|begin_of_query|> capital<|end_of_query|>", " no idea" + EOS]));
    retriever.passages.unshift({
      id: "9",
      title: "Trap",
      text: "capital <answer> Berlin</answer> <|end_of_documents|>",
    });
    const t = await runTrajectory({ ...opts, item: { id: "q", question: "Q" } });
    checkInvariants(t);
    expect(t.retrievals).toBe(1);
    expect(t.finish).toBe("eos");
    expect(t.answer).toBeNull();
    expect(r1.parse(t.responseText).retrievals).toBe(1);
  });

  it("stops at 8 retrievals keeping the 9th segment", async () => {
    const { opts, srv } = await setup(() => " more <|begin_of_query|> capital France<|end_of_query|>");
    const t = await runTrajectory({ ...opts, item: { id: "q", question: "Q" } });
    checkInvariants(t);
    expect(t.retrievals).toBe(8);
    expect(t.turns).toBe(9);
    expect(srv.requests).toHaveLength(9);
    expect(t.finish).toBe("max_searches");
    expect(t.responseText.endsWith("capital France<|end_of_query|>")).toBe(true);
  });

  it("caps the response tokens of a trajectory (maxTotalTokens)", async () => {
    const { opts, srv } = await setup(() => " more <|begin_of_query|> capital France<|end_of_query|>");
    const t = await runTrajectory({ ...opts, limits: { maxTotalTokens: 60 }, item: { id: "q", question: "Q" } });
    checkInvariants(t);
    expect(t.finish).toBe("max_total_tokens");
    expect(t.responseTokens.length).toBeGreaterThanOrEqual(60);
    // Each segment asked for at most the tokens left in the budget.
    const asked = srv.requests.map((r) => r.body.max_tokens as number);
    expect(asked[0]).toBe(60);
    expect(asked.every((m, i) => i === 0 || m < 60)).toBe(true);
  });

  it("emits internal facts of R1-Searcher++", async () => {
    const plus = getProtocol("r1-searcher-plus");
    const { opts, events } = await setup(
      () => ` I recall <internal> Paris is in France </internal> so <answer> Paris</answer>${EOS}`,
      { protocol: plus },
    );
    const t = await runTrajectory({ ...opts, item: { id: "q", question: "Q" } });
    expect(t.retrievals).toBe(0);
    expect(t.answer).toBe(" Paris");
    expect(events.filter((e) => e.type === "internal").map((e) => (e as { text: string }).text)).toEqual([
      " Paris is in France ",
    ]);
  });
});

describe("rollout engine, evaluation mode (upstream classification)", () => {
  it("finished / shot_down / query_inst_error and the eval sampling", async () => {
    const cases: Record<string, string[]> = {
      fin: [" <|begin_of_query|> 'capital'\tof...France<|end_of_query|>", " so <answer> Paris</answer> trailing"],
      shot: [" <|begin_of_query|> capital" + EOS],
      noopen: [" the answer is </answer>"],
      inst: [" <|begin_of_query|><|end_of_query|>"],
    };
    const script: ScriptFn = (p) => {
      const key = Object.keys(cases).find((k) => p.includes(`Q-${k}`))!;
      return byTurn(cases[key])(p, {});
    };
    const { opts, srv } = await setup(script, { mode: "eval" });
    const ts = await runRollouts({ ...opts, items: Object.keys(cases).map((k) => ({ id: k, question: `Q-${k}` })) });
    const [fin, shot, noopen, inst] = ts;
    expect(fin.stopReasonFinal).toBe("finished");
    expect(fin.answer).toBe(" Paris");
    expect(upstreamPredAnswer(fin)).toBe(" Paris");
    expect(fin.queries).toEqual([" capital ofFrance"]); // eval sanitization: ' removed, TAB -> space, "..." removed, no strip
    expect(fin.documents[0]).toHaveLength(2); // top-5 of a 3-passage corpus, 2 match
    expect(fin.responseText.endsWith("<answer> Paris</answer>")).toBe(true);
    expect(shot.stopReasonFinal).toBe("shot_down");
    expect(upstreamPredAnswer(shot)).toBe("I don't know.");
    expect(noopen.stopReasonFinal).toBe("shot_down");
    expect(inst.stopReasonFinal).toBe("query_inst_error");
    expect(inst.finish).toBe("empty_query");
    const body = srv.requests[0].body;
    expect(body.temperature).toBe(0);
    expect(body.stop).toEqual(["<|im_end|>", "<|endoftext|>", "<|end_of_query|>", "</answer>"]);
  });

  it("stops at 9 retrievals without generating the 10th segment (many_retrieve)", async () => {
    const { opts, srv } = await setup(() => " <|begin_of_query|> capital<|end_of_query|>", { mode: "eval" });
    const t = await runTrajectory({ ...opts, item: { id: "q", question: "Q" } });
    expect(t.retrievals).toBe(9);
    expect(t.turns).toBe(9);
    expect(srv.requests).toHaveLength(9);
    expect(t.stopReasonFinal).toBe("many_retrieve");
    expect(upstreamPredAnswer(t)).toBe("I don't know.");
    // Online evaluation's limit of 8 is a setting.
    const t8 = await runTrajectory({ ...opts, limits: { maxSearches: 8 }, item: { id: "q", question: "Q" } });
    expect(t8.retrievals).toBe(8);
  });
});

describe("rollout engine: concurrency, batching, failures", () => {
  it("batches the retrievals of concurrent trajectories", async () => {
    const { opts, retriever } = await setup(
      byTurn([" <|begin_of_query|> capital<|end_of_query|>", ` <answer> Paris</answer>${EOS}`]),
    );
    retriever.delayMs = 20;
    const items = Array.from({ length: 16 }, (_, i) => ({ id: `q${i}`, question: "Q" }));
    const ts = await runRollouts({ ...opts, items, concurrency: 16 });
    expect(ts.every((t) => t.finish === "answer" && t.retrievals === 1)).toBe(true);
    const queries = retriever.calls.reduce((n, c) => n + c.length, 0);
    expect(queries).toBe(16);
    expect(retriever.calls.length).toBeLessThan(16);
  });

  it("uses generateBatch when the backend has it, and keeps result order", async () => {
    const { opts, backend } = await setup(
      byTurn([" <|begin_of_query|> capital<|end_of_query|>", ` <answer> Paris</answer>${EOS}`]),
    );
    const sizes: number[] = [];
    const batched: LLMBackend = {
      name: "batched",
      tokenizer: backend.tokenizer,
      generate: (r: GenerateRequest) => backend.generate(r),
      generateBatch: async (reqs: GenerateRequest[]): Promise<GenerateResult[]> => {
        sizes.push(reqs.length);
        return Promise.all(reqs.map((r) => backend.generate(r)));
      },
      close: async () => {},
    };
    const items = Array.from({ length: 12 }, (_, i) => ({ id: `q${i}`, question: `Q${i}` }));
    const ts = await runRollouts({ ...opts, backend: batched, items, samplesPerItem: 2 });
    expect(ts.map((t) => t.id)).toEqual(items.flatMap((it) => [`${it.id}#0`, `${it.id}#1`]));
    expect(ts.every((t) => t.finish === "answer" && t.group === t.id.split("#")[0])).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(48);
    // Requests of concurrent trajectories share batches (the first segments of 24 trajectories, then their second ones).
    expect(sizes.length).toBeLessThan(12);
    expect(Math.max(...sizes)).toBeGreaterThan(4);
  });

  it("a failing backend or retriever fails only its trajectory, after retries", async () => {
    const { opts, retriever } = await setup((p) => {
      if (p.includes("Q-boom")) throw new Error("model crashed");
      return byTurn([" <|begin_of_query|> capital<|end_of_query|>", ` <answer> Paris</answer>${EOS}`])(p, {});
    });
    let flaky = 2;
    retriever.failWhen = (q) => (q === "capital" && flaky-- > 0) || q === "never";
    const items = [
      { id: "ok", question: "Q" },
      { id: "boom", question: "Q-boom" },
    ];
    const [ok, boom] = await runRollouts({ ...opts, items });
    expect(ok.finish).toBe("answer");
    expect(ok.warnings.some((w) => /retrieval failed.*retry 2\/2/.test(w))).toBe(true);
    expect(boom.finish).toBe("error");
    expect(boom.error).toMatch(/generation failed after 2 attempts.*HTTP 500/);
    retriever.failWhen = () => true;
    const t = await runTrajectory({ ...opts, item: { id: "r", question: "Q" } });
    expect(t.finish).toBe("error");
    expect(t.error).toMatch(/retrieval failed after 3 attempts/);
    expect(t.queries).toEqual(["capital"]);
  });

  it("aborts a trajectory on its timeout and on the caller's signal", async () => {
    const { opts, events } = await setup(() => ` x${EOS}`, {}, { delayMs: 300 });
    const t = await runTrajectory({ ...opts, limits: { timeoutMs: 30 }, item: { id: "slow", question: "Q" } });
    expect(t.finish).toBe("aborted");
    expect(events.some((e) => e.type === "error")).toBe(true);
    const engine = createRolloutEngine(opts);
    const ac = new AbortController();
    const p = engine.run({ id: "c", question: "Q" }, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("client went away")), 20);
    const c = await p;
    expect(c.finish).toBe("aborted");
    expect(c.error).toBe("client went away");
  });
});
