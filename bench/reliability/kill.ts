/**
 * kill -9 at random moments: `index build` (the old index still opens and answers, or the new one is complete),
 * `train` and `sft` (resume continues from the last checkpoint with its optimizer state; metrics.jsonl has every step
 * exactly once), `eval` (resume; every question exactly once) and `quickstart` (resumes at the interrupted stage).
 * Each job is one run killed again and again (SIGKILL after a random delay), restarted each time, then let finish.
 */
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { startScriptedOpenAIServer, EOS } from "../../src/llm/testing/scripted-openai-server.js";
import { TEST_PIECES, VocabTokenizer } from "../../src/llm/testing/vocab-tokenizer.js";
import { openRetriever } from "../../src/retrieval/index.js";
import { QUICKSTART_STAGES } from "../../src/quickstart/index.js";
import { buildToyWorld, TOY_TEMPLATE } from "../../src/train/testing/world.js";
import { Rng } from "../../src/util/rng.js";
import { collect, evalQuestions, QUICK, spawnCli, sleep, type Row } from "./common.js";

const KILLS = QUICK ? 5 : 20;

/** Run `args` until it exits 0, SIGKILLing it `kills` times after a random delay in [lo, hi] ms; `check` runs after each kill. */
async function killLoop(
  args: () => string[],
  kills: number,
  delay: () => number,
  check: (i: number, stderr: string) => Promise<void> | void,
  onStart?: (i: number) => void,
  /** The delay counts from the moment this holds (e.g. the run made progress since it started); default: at once. */
  armed?: () => boolean,
): Promise<{ kills: number; finalStderr: string; finalCode: number | null; runs: number; log: string[] }> {
  let done = 0;
  let runs = 0;
  const log: string[] = [];
  for (;;) {
    onStart?.(runs);
    const p = spawnCli(args());
    runs++;
    const c = collect(p);
    if (done < kills) {
      const d = delay();
      let exited = false;
      void c.done.then(() => (exited = true));
      if (armed) while (!exited && !armed()) await sleep(100);
      const r = await Promise.race([c.done, sleep(d).then(() => null)]);
      if (r === null) {
        p.kill("SIGKILL");
        const e = await c.done;
        done++;
        await check(done, e.stderr);
        continue;
      }
      // it finished before the kill: a run that completed
      if (r.code !== 0) log.push(`run ${runs} exited ${r.code}: ${r.stderr.slice(-300)}`);
      return { kills: done, finalStderr: r.stderr, finalCode: r.code, runs, log };
    }
    const r = await c.done;
    return { kills: done, finalStderr: r.stderr, finalCode: r.code, runs, log };
  }
}

async function indexBuildKills(dir: string, rng: Rng): Promise<Row> {
  const mk = (n: number, marker: string) =>
    Array.from({ length: n }, (_, i) => {
      const words = Array.from({ length: 40 }, (_, j) => `w${(i * 31 + j * 7) % 5000}`).join(" ");
      return `${i + 1}\t${i === 0 ? marker : `Title ${i}`}   ${i === 0 ? `${marker} ` : ""}${words}`;
    }).join("\n") + "\n";
  const oldCorpus = path.join(dir, "old.tsv");
  const newCorpus = path.join(dir, "new.tsv");
  writeFileSync(oldCorpus, mk(300, "oldmarker"));
  writeFileSync(newCorpus, mk(QUICK ? 20_000 : 60_000, "newmarker"));
  const out = path.join(dir, "idx");
  const pristine = path.join(dir, "idx-old-copy");
  const b = await collect(spawnCli(["index", "build", "--corpus", oldCorpus, "--out", out, "--bm25", "--quiet"])).done;
  if (b.code !== 0) throw new Error(`index build failed: ${b.stderr}`);
  cpSync(out, pristine, { recursive: true });
  // time one full build of the new corpus
  const t0 = Date.now();
  const full = await collect(
    spawnCli(["index", "build", "--corpus", newCorpus, "--out", path.join(dir, "idx-full"), "--bm25", "--quiet"]),
  ).done;
  const buildMs = Date.now() - t0;
  if (full.code !== 0) throw new Error(`index build failed: ${full.stderr}`);
  rmSync(path.join(dir, "idx-full"), { recursive: true, force: true });
  let old = 0;
  let complete = 0;
  const bad: string[] = [];
  for (let i = 0; i < KILLS; i++) {
    const p = spawnCli(["index", "build", "--corpus", newCorpus, "--out", out, "--bm25", "--quiet"]);
    const c = collect(p);
    const r = await Promise.race([c.done, sleep(200 + rng.next() * buildMs * 2).then(() => null)]);
    if (r === null) {
      p.kill("SIGKILL");
      await c.done;
    }
    try {
      const ret = await openRetriever(out);
      const info = await ret.info();
      const [oldHits] = await ret.search(["oldmarker"], 1);
      const [newHits] = await ret.search(["newmarker"], 1);
      await ret.close();
      if (info.size === 300 && oldHits[0]?.title === "oldmarker") old++;
      else if (info.size === (QUICK ? 20_000 : 60_000) && newHits[0]?.title === "newmarker") complete++;
      else bad.push(`kill ${i + 1}: an index with ${info.size} passages opened`);
    } catch (err) {
      bad.push(`kill ${i + 1}: the index does not open: ${err instanceof Error ? err.message.slice(0, 120) : err}`);
    }
    // back to the old index for the next kill
    rmSync(out, { recursive: true, force: true });
    cpSync(pristine, out, { recursive: true });
  }
  const leftovers = readdirSync(dir).filter((n) => n.startsWith(".idx.tmp-"));
  return {
    figure: `kill -9: index build (${KILLS} kills at random moments of a ${(buildMs / 1000).toFixed(1)} s build over an existing index)`,
    target: "the old index opens and answers, or the new one is complete; never a half-written index that opens",
    measured: `${old} old index intact, ${complete} new index complete, ${bad.length} other; ${leftovers.length} temp folders left (removed by the next build)`,
    met: bad.length === 0 && old + complete === KILLS,
    ...(bad.length ? { note: bad.slice(0, 3).join("; ") } : {}),
  };
}

async function evalKills(dir: string, rng: Rng): Promise<Row> {
  const n = QUICK ? 120 : 400;
  const qs = evalQuestions(n);
  const data = path.join(dir, "eval-q.jsonl");
  writeFileSync(data, qs.map((q) => JSON.stringify(q)).join("\n") + "\n");
  const tok = new VocabTokenizer(TEST_PIECES);
  const srv = await startScriptedOpenAIServer({
    tokenizer: tok,
    delayMs: 30,
    script: () => ` I know it.</think>\n\n<answer> Paris </answer>${EOS}`,
  });
  const out = path.join(dir, "eval", "results.jsonl");
  try {
    const args = () => [
      "eval",
      "--dataset",
      data,
      "--llm",
      `${srv.url}#m`,
      "--mode",
      "no-retrieval",
      "--out",
      out,
      "--quiet",
      "--concurrency",
      "2",
    ];
    const count = () => (existsSync(out) ? readFileSync(out, "utf8").split("\n").filter(Boolean).length : 0);
    let atStart = 0;
    // a random moment (0–0.5 s) after this run wrote a record of its own
    const res = await killLoop(
      args,
      KILLS,
      () => rng.next() * 500,
      () => {},
      () => {
        atStart = count();
      },
      () => count() > atStart,
    );
    const lines = existsSync(out) ? readFileSync(out, "utf8").split("\n").filter(Boolean) : [];
    let torn = 0;
    const ids: number[] = [];
    for (const l of lines) {
      try {
        ids.push((JSON.parse(l) as { idx: number }).idx);
      } catch {
        torn++;
      }
    }
    const uniq = new Set(ids);
    const dup = ids.length - uniq.size;
    const lost = qs.filter((q) => !uniq.has(q.idx)).length;
    return {
      figure: `kill -9: eval (${res.kills} kills at random moments, ${n} questions, resumed each time)`,
      target: "resume; no duplicated or lost record",
      measured: `${uniq.size}/${n} records, ${dup} duplicated, ${lost} lost, ${torn} torn lines; final run exit ${res.finalCode} (${res.runs} runs)`,
      met: dup === 0 && lost === 0 && torn === 0 && res.finalCode === 0 && res.kills === KILLS,
      ...(res.log.length ? { note: res.log.join("; ") } : {}),
    };
  } finally {
    await srv.close();
  }
}

interface TrainCheck {
  resumes: number;
  wrongResume: string[];
}

function latestStep(runDir: string): number {
  const f = path.join(runDir, "checkpoints", "latest");
  if (!existsSync(f)) return 0;
  return Number(readFileSync(f, "utf8").trim().replace("step-", ""));
}

async function trainKills(dir: string, rng: Rng, stage: "train" | "sft"): Promise<Row> {
  const w = await buildToyWorld(path.join(dir, `world-${stage}`), { pretrainSteps: 40, seed: 5 });
  await w.retriever.close();
  // steps take ~0.1 s on the toy world: enough steps that every run is killed before the end
  const maxSteps = KILLS * 20 + 20;
  const cfgFile = path.join(dir, `${stage}.yaml`);
  const runDir = path.join(dir, `run-${stage}`);
  if (stage === "train") {
    writeFileSync(
      cfgFile,
      [
        "preset: r1-searcher-llama-stage2",
        "seed: 11",
        `model: { init: ${JSON.stringify(w.baseCheckpoint)} }`,
        `data: { path: ${JSON.stringify(w.questionsFile)} }`,
        `protocol: { name: r1-searcher, template: ${JSON.stringify(TOY_TEMPLATE)} }`,
        `retriever: { spec: ${JSON.stringify(w.indexDir)}, k: 1 }`,
        "rollout: { nSamplesPerPrompt: 4, rolloutBatchSize: 3, maxTokensPerSegment: 24, maxRetrievals: 2, concurrency: 16 }",
        "algorithm: { initKlCoef: 0.01, trainBatchSize: 6, microTrainBatchSize: 3, microRolloutBatchSize: 12 }",
        `optim: { lr: 3e-4, totalSteps: ${maxSteps * 2} }`,
        `run: { numEpisodes: 1000, maxSteps: ${maxSteps}, saveSteps: 1, maxCheckpoints: 2 }`,
        "",
      ].join("\n"),
    );
  } else {
    const data = path.join(dir, "sft-demos.jsonl");
    writeFileSync(data, w.demos.map((d) => JSON.stringify(d)).join("\n") + "\n");
    writeFileSync(
      cfgFile,
      [
        "stage: sft",
        "seed: 3",
        `model: { init: ${JSON.stringify(w.baseCheckpoint)} }`,
        `data: { path: ${JSON.stringify(data)}, maxSeqLen: 128 }`,
        "protocol: { name: r1-searcher }",
        "epochs: 1000",
        "batchSize: 8",
        "microBatchSize: 4",
        "optim: { lr: 1e-4 }",
        `run: { maxSteps: ${maxSteps}, saveSteps: 1, maxCheckpoints: 2 }`,
        "",
      ].join("\n"),
    );
  }
  const chk: TrainCheck = { resumes: 0, wrongResume: [] };
  let expectFrom = 0;
  // each run's stderr says where it resumed: it must be the newest checkpoint when it started
  const checkResume = (stderr: string) => {
    const m = /resuming from .*step-(\d+) \(step (\d+)\)/.exec(stderr);
    if (!m) return;
    chk.resumes++;
    if (Number(m[2]) !== expectFrom) chk.wrongResume.push(`resumed from step ${m[2]}, newest checkpoint ${expectFrom}`);
  };
  const res = await killLoop(
    () => [stage, "--config", cfgFile, "--run-dir", runDir, "--quiet", ...(existsSync(runDir) ? ["--resume"] : [])],
    KILLS,
    // at a random moment of the next step or checkpoint write, once this run completed a step of its own
    () => rng.next() * 500,
    (_i, stderr) => checkResume(stderr),
    () => {
      expectFrom = latestStep(runDir);
    },
    () => latestStep(runDir) > expectFrom,
  );
  checkResume(res.finalStderr);
  const metrics = readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean);
  const steps = metrics.map((l) => (JSON.parse(l) as { step: number }).step);
  const want = Array.from({ length: maxSteps }, (_, i) => i + 1);
  const stepsOk = JSON.stringify(steps) === JSON.stringify(want);
  const last = path.join(runDir, "checkpoints", `step-${String(maxSteps).padStart(6, "0")}`);
  const hasOpt = existsSync(path.join(last, "optimizer.safetensors"));
  const state = existsSync(path.join(last, "trainer_state.json"))
    ? (JSON.parse(readFileSync(path.join(last, "trainer_state.json"), "utf8")) as {
        step: number;
        optimizerSteps: number;
      })
    : null;
  return {
    figure: `kill -9: ${stage} (${res.kills} kills at random moments of a ${maxSteps}-step run, checkpoint every step, resumed with --resume)`,
    target:
      "resume continues from the last checkpoint with optimizer state; metrics.jsonl has no duplicated or missing step",
    measured: `${res.runs} runs, final exit ${res.finalCode}; ${chk.resumes} resumes, ${chk.wrongResume.length} not from the newest checkpoint; metrics steps ${stepsOk ? `1..${maxSteps} once each` : JSON.stringify(steps)}; final checkpoint with optimizer state: ${hasOpt ? "yes" : "no"} (optimizer steps ${state?.optimizerSteps ?? "?"})`,
    met: stepsOk && hasOpt && res.finalCode === 0 && res.kills === KILLS && chk.wrongResume.length === 0,
    ...(res.log.length || res.finalCode !== 0 || chk.wrongResume.length
      ? {
          note: [
            ...chk.wrongResume.slice(0, 3),
            ...res.log,
            res.finalCode !== 0 ? res.finalStderr.slice(-300) : "",
          ].join("; "),
        }
      : {}),
  };
}

async function quickstartKills(dir: string, rng: Rng, kills: number): Promise<Row> {
  const out = path.join(dir, "qs");
  const stateFile = path.join(out, "state.json");
  const wrong: string[] = [];
  let expected: string | null = null;
  const stagesDone = (): string[] =>
    existsSync(stateFile)
      ? Object.entries(
          (JSON.parse(readFileSync(stateFile, "utf8")) as { stages: Record<string, { done: boolean }> }).stages,
        )
          .filter(([, v]) => v.done)
          .map(([k]) => k)
      : [];
  let checked = 0;
  let doneAtStart = 0;
  // a run must start working at the first stage not done when it started (the interrupted one)
  const checkStart = (stderr: string) => {
    const m = /\[\d+\/\d+\] ([\w-]+): (?!done)/.exec(stderr);
    if (!m || expected === null) return;
    checked++;
    if (m[1] !== expected) wrong.push(`started at ${m[1]}, interrupted in ${expected}`);
  };
  const t0 = Date.now();
  const res = await killLoop(
    () => ["quickstart", "--preset", "micro", "--seed", "3", "--out", out, "--quiet"],
    kills,
    // a random moment (0–1.5 s) after this run finished a stage of its own
    () => rng.next() * 1500,
    (_i, stderr) => checkStart(stderr),
    () => {
      const done = new Set(stagesDone());
      doneAtStart = done.size;
      expected = QUICKSTART_STAGES.find((st) => !done.has(st)) ?? null;
    },
    () => stagesDone().length > doneAtStart,
  );
  checkStart(res.finalStderr);
  const doneAll = stagesDone();
  const finalOk = res.finalCode === 0 && doneAll.includes("report");
  return {
    figure: `kill -9: quickstart --preset micro --seed 3 (${res.kills} kills at random moments, resumed each time)`,
    target: "resumes at the interrupted stage (finished stages are skipped), ends with the report",
    measured: `${res.runs} runs in ${((Date.now() - t0) / 1000).toFixed(0)} s, final exit ${res.finalCode}, ${doneAll.length}/${QUICKSTART_STAGES.length} stages done; ${checked} restarts checked, ${wrong.length} started elsewhere`,
    met: finalOk && res.kills === kills && wrong.length === 0,
    ...(res.finalCode !== 0 || wrong.length
      ? { note: [...wrong.slice(0, 3), res.finalStderr.slice(-300)].join("; ") }
      : {}),
  };
}

/** `only`: job names to run (index, eval, train, sft, quickstart); empty = all. */
export async function killSection(dir: string, say: (s: string) => void, only: string[] = []): Promise<Row[]> {
  const rng = new Rng(16);
  const rows: Row[] = [];
  const want = (j: string) => only.length === 0 || only.includes(j);
  if (want("index")) {
    say("kill -9: index build");
    rows.push(await indexBuildKills(dir, rng));
  }
  if (want("eval")) {
    say("kill -9: eval");
    rows.push(await evalKills(dir, rng));
  }
  if (want("train")) {
    say("kill -9: train");
    rows.push(await trainKills(dir, rng, "train"));
  }
  if (want("sft")) {
    say("kill -9: sft");
    rows.push(await trainKills(dir, rng, "sft"));
  }
  if (want("quickstart")) {
    say("kill -9: quickstart");
    rows.push(await quickstartKills(dir, rng, QUICK ? 3 : 6));
  }
  return rows;
}
