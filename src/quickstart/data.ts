/**
 * Data of the quickstart: the world, the BM25 check of the ideal queries, the pre-training mix (world text + the
 * labelled protocol prior), the tokenizer text, prompts and probe questions.
 */
import type { World, WorldConfigInput, WorldQuestion, WorldQuestionStep } from "../data/world/index.js";
import {
  generateWorld,
  worldConfig,
  worldCorpusPassages,
  singleHopWorldQuestion,
  renderIdealTrajectory,
  RELATION_KEYWORD,
  singleHopQuestion,
  trainOnlyFacts,
  trajectoryTags,
  worldPretrainDocs,
  type IdealMode,
  type PretrainDoc,
} from "../data/world/index.js";
import type { ResponseProtocol } from "../protocol/types.js";
import { buildIndex } from "../retrieval/build.js";
import { openRetriever } from "../retrieval/factory.js";
import type { Retriever } from "../retrieval/types.js";
import { escapeRegExp } from "../util/pystr.js";
import { Rng, hashSeed } from "../util/rng.js";
import type { Passage } from "../util/types.js";
import type { QuickstartConfig } from "./presets.js";

/** Fill `{query_open}`, `{query_close}`, `{internal_open}`, `{internal_close}` of a header with a protocol's tags. */
export function fillHeader(header: string, protocol: ResponseProtocol): string {
  const t = trajectoryTags(protocol);
  return header
    .replaceAll("{query_open}", protocol.queryOpen)
    .replaceAll("{query_close}", protocol.queryClose)
    .replaceAll("{internal_open}", t.internalOpen ?? "")
    .replaceAll("{internal_close}", t.internalClose ?? "");
}

export interface QuickstartPrompts {
  /** Search prompt of R1-Searcher (training, rollouts, evaluation). */
  r1: string;
  /** Search prompt of R1-Searcher++. */
  plus: string;
  /** No-search baseline (the pre-training Q/A format). */
  direct: string;
  /** Naive RAG baseline: the passages retrieved with the question, then the direct-answer prompt. */
  naiveRag: string;
  /** The wrapper of prior texts per protocol (header line + Q/A wrapper). */
  priorWrapper: { r1: string; plus: string };
}

/**
 * The prompts (templates with `{question}`; the naive-RAG one also `{documents}`). All end the way the pre-training
 * Q/A texts continue: `Question: …\nAnswer: <think>`.
 */
export function quickstartPrompts(
  cfg: QuickstartConfig,
  r1: ResponseProtocol,
  plus: ResponseProtocol,
): QuickstartPrompts {
  const think = trajectoryTags(r1).thinkOpen;
  const qa = cfg.prompts.qaWrapper;
  const r1Header = fillHeader(cfg.prompts.r1Header, r1);
  const plusHeader = fillHeader(cfg.prompts.plusHeader, plus);
  const r1Prompt = `${r1Header}\n${qa}${think}`;
  // standard RAG: the passages retrieved with the question ("(j)title   text" lines), then the direct-answer prompt
  const naiveRag = `{documents}${qa}${think}`;
  return {
    r1: r1Prompt,
    plus: `${plusHeader}\n${qa}${think}`,
    direct: `${qa}${think}`,
    naiveRag,
    priorWrapper: { r1: `${r1Header}\n${qa}`, plus: `${plusHeader}\n${qa}` },
  };
}

/** Every distinct tag-like string of a protocol (query, documents, answer, think, internal tags). */
export function protocolTags(protocol: ResponseProtocol): string[] {
  const t = trajectoryTags(protocol);
  const texts = [
    protocol.queryOpen,
    protocol.queryClose,
    protocol.answerOpen,
    protocol.answerClose,
    t.thinkOpen,
    t.thinkClose,
    t.internalOpen ?? "",
    t.internalClose ?? "",
    protocol.renderDocumentBlock([]),
  ];
  const out = new Set<string>();
  for (const s of texts) for (const m of s.matchAll(/<\/?\|?[A-Za-z_]+\|?>/g)) out.add(m[0]);
  return [...out];
}

/** BM25 results of every fact's ideal query (what the prior examples show and what the check below measures). */
export async function idealQueryResults(
  world: World,
  retriever: Retriever,
  k: number,
): Promise<Map<string, Passage[]>> {
  const queries = [...new Set(world.facts.map((f) => f.query))];
  const out = new Map<string, Passage[]>();
  for (let i = 0; i < queries.length; i += 256) {
    const part = queries.slice(i, i + 256);
    const res = await retriever.search(part, k);
    part.forEach((q, j) => out.set(q, res[j]));
  }
  return out;
}

/** Share of facts whose page the BM25 index returns first / within k for the fact's ideal query. */
export function idealQueryHitRates(world: World, results: Map<string, Passage[]>): { top1: number; topK: number } {
  let top1 = 0;
  let topK = 0;
  for (const f of world.facts) {
    const r = results.get(f.query) ?? [];
    if (r.length && f.passages.includes(r[0].id)) top1++;
    if (r.some((p) => f.passages.includes(p.id))) topK++;
  }
  const n = Math.max(1, world.facts.length);
  return { top1: top1 / n, topK: topK / n };
}

export interface PretrainMix {
  rows: PretrainDoc[];
  /** Train questions the pre-training text answers (main-world chains and multi-hop prior examples): kept out of RL. */
  seenTrainQuestions: number[];
  /** Rows per source over the whole run (`world:*`, `background:*`, `prior:*`). */
  counts: Record<string, number>;
  /** Background texts dropped because they named a main-world entity. */
  droppedBackground: number;
}

/**
 * Make a text read after a document block start with a space. The rollout inserts the block as its own token piece
 * (ending in "\n\n"), so the model continues after a "\n\n" token; in one long training text the same spot would
 * tokenize as "\n", "\n", "Name" instead. With the space, both give "\n\n", " Name" — the model learns exactly the
 * token sequence it will see in rollouts.
 */
export function spaceAfterDocuments(text: string, protocol: ResponseProtocol): string {
  const end = protocol.renderDocumentBlock([]).trimEnd();
  const close = end.slice(end.lastIndexOf("<"));
  return text.replace(new RegExp(`${escapeRegExp(close)}(\\s*)(?=\\S)`, "g"), (_m, ws: string) => `${close}${ws} `);
}

/** Search examples (ideal trajectories with real retrieval results) for some questions of a world. */
function searchExamples(
  questions: Array<Pick<WorldQuestion, "question" | "answer" | "metadata">>,
  protocol: ResponseProtocol,
  wrapper: string,
  documents: (q: string, s: WorldQuestionStep) => Passage[],
  mode?: IdealMode,
): PretrainDoc[] {
  const think = trajectoryTags(protocol).thinkOpen;
  return questions.map((q) => ({
    text: spaceAfterDocuments(
      wrapper.replace("{question}", q.question) +
        think +
        renderIdealTrajectory(q, protocol, { documents, mode }).response,
      protocol,
    ),
    source: "protocol-prior" as const,
    protocol: protocol.name,
  }));
}

/** A background world for pass `pass`: same generator, another seed (its entities are checked against the main world). */
export function backgroundWorld(cfg: QuickstartConfig, pass: number): World {
  const seed = hashSeed("quickstart-background", cfg.seed, pass) % 1_000_000_007;
  // The background worlds know the same kinds of things as the main world (its fame shares), so their search and
  // recall examples show the same "recall what you know" pattern.
  const o = cfg.world.overrides as Partial<WorldConfigInput>;
  return generateWorld(
    worldConfig(cfg.pretrain.background.preset, seed, {
      internalShare: o.internalShare ?? 0.5,
      ...(o.internalShareByType ? { internalShareByType: o.internalShareByType } : {}),
    }),
  );
}

/** A predicate that is true for texts naming any entity of `world` (whole-word match). */
export function mentionsWorld(world: World): (text: string) => boolean {
  const names = [...new Set(world.entities.map((e) => e.name))].sort((a, b) => b.length - a.length);
  const re = new RegExp(`(?<![A-Za-z])(?:${names.map(escapeRegExp).join("|")})(?![A-Za-z])`);
  return (text) => re.test(text);
}

/**
 * The pre-training text, `epochs` passes of:
 * - the main world's internal-fact text (encyclopedia paragraphs, single-hop Q/A in the answer format, no-search
 *   reasoning chains of train questions), fresh paraphrases each pass;
 * - generic text from a fresh background world (its own facts, Q/A, chains, and worked search examples in both
 *   protocols with results from its own BM25 index), minus every text that names a main-world entity;
 * - optionally the main world's protocol prior (train-only facts; default off).
 * `indexDir(pass)` is where the background world's index is built.
 */
export async function buildPretrainMix(
  cfg: QuickstartConfig,
  world: World,
  protocols: { r1: ResponseProtocol; plus: ResponseProtocol },
  prompts: QuickstartPrompts,
  mainResults: Map<string, Passage[]>,
  indexDir: (pass: number) => string,
): Promise<PretrainMix> {
  const rows: PretrainDoc[] = [];
  const counts: Record<string, number> = {};
  const add = (docs: PretrainDoc[], key: string) => {
    rows.push(...docs);
    counts[key] = (counts[key] ?? 0) + docs.length;
  };
  const bgc = cfg.pretrain.background;
  const namesMain = mentionsWorld(world);
  let dropped = 0;
  const clean = (docs: PretrainDoc[]) => {
    const keep = docs.filter((d) => !namesMain(d.text));
    dropped += docs.length - keep.length;
    return keep;
  };

  // The main world's protocol prior. Mode "internal" (default): only famous entities — single-hop questions about
  // internal facts and train questions whose facts are all internal, searched in R1-Searcher format and recalled in
  // R1-Searcher++ format — so the prior states nothing beyond the internal facts and no non-famous main-world name
  // ever appears in pre-training ("have I seen this name?" then tells internal from external). Mode "train-only":
  // facts no dev/test question needs, internal or not, on pages that state nothing a dev/test question needs.
  const trainOnly = new Set(trainOnlyFacts(world).map((f) => f.id));
  const internalOnly = cfg.pretrain.mainPriorMode === "internal";
  const factById = new Map(world.facts.map((f) => [f.id, f]));
  const safePage = new Set(
    world.passages
      .filter((p) =>
        internalOnly
          ? p.kind === "entity" && p.facts.every((f) => factById.get(f)?.internal)
          : p.facts.every((f) => trainOnly.has(f)),
      )
      .map((p) => p.id),
  );
  const mainDocs = (q: string): Passage[] => (mainResults.get(q) ?? []).filter((p) => safePage.has(p.id));
  const okFact = (id: string) => (internalOnly ? Boolean(factById.get(id)?.internal) : trainOnly.has(id));
  const safeStep = (s: WorldQuestionStep) => okFact(s.fact) && s.passages.every((id) => safePage.has(id));
  const singlePool = world.facts
    .filter((f) => okFact(f.id) && f.passages.every((id) => safePage.has(id)))
    .map((f) => singleHopWorldQuestion(f));
  const multiKinds = cfg.pretrain.priorMultiKinds;
  const multiKindOk = (q: WorldQuestion) => !multiKinds || (multiKinds as string[]).includes(q.metadata.kind);
  const multiPool = world.questions.filter(
    (q) => q.metadata.split === "train" && q.metadata.hops > 1 && multiKindOk(q) && q.metadata.steps.every(safeStep),
  );
  // every pass takes the next examples of a fixed shuffle of the pool (all of it is seen once before any repeats)
  const rotate = <T>(pool: T[], n: number, pass: number, salt: string): T[] => {
    if (pool.length === 0 || n === 0) return [];
    const order = new Rng(hashSeed("quickstart-main-prior", cfg.seed, salt)).shuffle(pool.slice());
    return Array.from({ length: Math.min(n, order.length) }, (_, i) => order[(pass * n + i) % order.length]);
  };
  const mainPriorFor = (pass: number) => {
    const out: Array<{ docs: PretrainDoc[]; key: string }> = [];
    for (const key of ["r1", "plus"] as const) {
      const protocol = protocols[key];
      const single = rotate(singlePool, cfg.pretrain.mainPriorSingle, pass, `${protocol.name}:single`);
      const multi = rotate(multiPool, cfg.pretrain.mainPriorMulti, pass, `${protocol.name}:multi`);
      out.push({
        docs: searchExamples(single, protocol, prompts.priorWrapper[key], mainDocs),
        key: `prior:main:${key}:single`,
      });
      out.push({
        docs: searchExamples(multi, protocol, prompts.priorWrapper[key], mainDocs),
        key: `prior:main:${key}:multi`,
      });
    }
    return out;
  };
  // recall practice: single-hop R1-Searcher++ recalls of internal facts (stated by the pre-training text anyway)
  const recallPool = world.facts.filter((f) => f.internal).map((f) => singleHopWorldQuestion(f));
  const recallFor = (pass: number): PretrainDoc[] =>
    searchExamples(
      rotate(recallPool, cfg.pretrain.mainRecall, pass, `${protocols.plus.name}:recall`),
      protocols.plus,
      prompts.priorWrapper.plus,
      () => [],
    );
  const seen = new Set<number>();
  if (cfg.pretrain.mainChains) {
    for (const q of world.questions)
      if (q.metadata.split === "train" && q.metadata.external_facts === 0) seen.add(q.idx);
  }
  counts["prior:main:pool:single"] = singlePool.length;
  counts["prior:main:pool:multi"] = multiPool.length;
  if (cfg.pretrain.mainRecall > 0) counts["prior:main:pool:recall"] = recallPool.length;

  for (let pass = 0; pass < cfg.pretrain.epochs; pass++) {
    const main = worldPretrainDocs(world, protocols.r1, {
      qaWrapper: cfg.prompts.qaWrapper,
      seed: hashSeed("quickstart-main-text", cfg.seed, pass),
      trainChains: cfg.pretrain.mainChains,
    });
    for (const src of ["facts", "qa", "chains"] as const)
      add(
        main.filter((d) => d.source === src),
        `world:${src}`,
      );
    for (const m of mainPriorFor(pass)) add(m.docs, m.key);
    if (cfg.pretrain.mainRecall > 0) add(recallFor(pass), "prior:main:plus:recall");
    for (const q of rotate(multiPool, cfg.pretrain.mainPriorMulti, pass, `${protocols.r1.name}:multi`)) seen.add(q.idx);
    for (const q of rotate(multiPool, cfg.pretrain.mainPriorMulti, pass, `${protocols.plus.name}:multi`))
      seen.add(q.idx);

    if (bgc.facts + bgc.qa + bgc.chains + bgc.priorSingle + bgc.priorMulti === 0) continue;
    const bg = backgroundWorld(cfg, pass);
    const rng = new Rng(hashSeed("quickstart-background-pick", cfg.seed, pass));
    const text = worldPretrainDocs(bg, protocols.r1, {
      qaWrapper: cfg.prompts.qaWrapper,
      seed: hashSeed("bg-text", cfg.seed, pass),
    });
    for (const [src, n] of [
      ["facts", bgc.facts],
      ["qa", bgc.qa],
      ["chains", bgc.chains],
    ] as const) {
      add(clean(rng.shuffle(text.filter((d) => d.source === src))).slice(0, n), `background:${src}`);
    }
    if (bgc.priorSingle + bgc.priorMulti === 0) continue;
    const dir = indexDir(pass);
    await buildIndex({ corpus: worldCorpusPassages(bg), out: dir, bm25: true, progress: false });
    const retriever = await openRetriever(dir);
    let results: Map<string, Passage[]>;
    try {
      results = await idealQueryResults(bg, retriever, cfg.k);
    } finally {
      await retriever.close();
    }
    const docs = (q: string): Passage[] => results.get(q) ?? [];
    // in "internal" mode every background name is unfamiliar, so its R1-Searcher++ examples search every fact
    const bgMode: IdealMode | undefined = internalOnly ? "search-all" : undefined;
    const bgMulti = rng.shuffle(
      bg.questions.filter((q) => q.metadata.hops > 1 && multiKindOk(q) && !namesMain(q.question)),
    );
    for (const key of ["r1", "plus"] as const) {
      const protocol = protocols[key];
      if (bgc.priorSingle > 0) {
        const pool = rng
          .shuffle(trainOnlyFacts(bg).filter((f) => !namesMain(f.statement)))
          .slice(0, bgc.priorSingle * 2);
        const single = searchExamples(
          pool.map((f) => singleHopWorldQuestion(f)),
          protocol,
          prompts.priorWrapper[key],
          docs,
          bgMode,
        );
        add(clean(single).slice(0, bgc.priorSingle), `background:prior:${key}:single`);
      }
      if (bgc.priorMulti > 0) {
        const picked =
          key === "r1" ? bgMulti.slice(0, bgc.priorMulti * 2) : bgMulti.slice(bgc.priorMulti * 2, bgc.priorMulti * 4);
        add(
          clean(searchExamples(picked, protocol, prompts.priorWrapper[key], docs, bgMode)).slice(0, bgc.priorMulti),
          `background:prior:${key}:multi`,
        );
      }
    }
  }
  const rng = new Rng(hashSeed("quickstart-pretrain-mix", cfg.seed));
  return {
    rows: rng.shuffle(rows),
    counts,
    droppedBackground: dropped,
    seenTrainQuestions: [...seen].sort((a, b) => a - b),
  };
}

/** Texts the tokenizer is trained on (no dev/test question text). */
export function tokenizerTexts(world: World, pretrainTexts: string[], prompts: QuickstartPrompts): string[] {
  return [
    ...pretrainTexts,
    ...world.passages.map((p) => `${p.title}   ${p.text}`),
    ...world.questions.filter((q) => q.metadata.split === "train").map((q) => q.question),
    prompts.r1,
    prompts.plus,
  ];
}

export interface ProbeItem {
  idx: string;
  question: string;
  answer: string;
}

/**
 * Single-hop questions about facts that test questions need: internal ones (what pre-training taught) and external ones
 * (what it must not know: no pre-training text states them, so recalling them is a guess).
 */
export function probeQuestions(
  world: World,
  n: number,
  seed: number,
): { internal: ProbeItem[]; external: ProbeItem[] } {
  const rng = new Rng(hashSeed("quickstart-probe", seed));
  const needed = new Set(
    world.questions.filter((q) => q.metadata.split === "test").flatMap((q) => q.metadata.steps.map((s) => s.fact)),
  );
  const pick = (internal: boolean): ProbeItem[] =>
    rng
      .shuffle(world.facts.filter((f) => f.internal === internal && needed.has(f.id)))
      .slice(0, n)
      .map((f) => ({ idx: `probe-${f.id}`, ...singleHopQuestion(f) }));
  return { internal: pick(true), external: pick(false) };
}

/** Questions of a split as upstream rows. */
export function splitQuestions(world: World, split: "train" | "dev" | "test"): WorldQuestion[] {
  return world.questions.filter((q) => q.metadata.split === split);
}

/**
 * Single-hop questions (upstream row shape, `idx` "single-<fact>") about facts that no test question needs, half
 * internal and half external, for the R1-Searcher++ rejection sampling.
 */
export function singleHopRsQuestions(
  world: World,
  n: number,
  seed: number,
): Array<{ idx: string; question: string; answer: string }> {
  const rng = new Rng(hashSeed("quickstart-rs-single", seed));
  const pool = trainOnlyFacts(world);
  const pick = (internal: boolean) =>
    rng.shuffle(pool.filter((f) => f.internal === internal)).slice(0, Math.ceil(n / 2));
  return rng
    .shuffle([...pick(true), ...pick(false)])
    .slice(0, n)
    .map((f) => ({ idx: `single-${f.id}`, ...singleHopQuestion(f) }));
}

/**
 * Check every recalled fact (`<internal>` block) of a response against the world: a recall is *grounded* when it states
 * a fact the model was taught (an internal fact: its subject, its relation's keyword and its object all occur in the
 * statement) or a fact stated by a document retrieved earlier in the same response (the document holds the same
 * subject and object). Invented recalls — a tiny model's lucky guesses, e.g. a made-up birthplace that happens to lead
 * to the right yes/no — are not. Returns the number of recalls and how many are grounded.
 */
export function groundedRecalls(
  world: World,
  protocol: ResponseProtocol,
  response: string,
): { recalls: number; grounded: number } {
  const facts = world.facts;
  let recalls = 0;
  let grounded = 0;
  let docs = "";
  for (const s of protocol.parse(response).segments) {
    if (s.kind === "documents") docs += `\n${s.text}`;
    if (s.kind !== "internal") continue;
    recalls++;
    const st = s.text;
    const words = new Set(st.toLowerCase().split(/[^\p{L}\p{N}]+/u));
    const ok = facts.some(
      (f) =>
        st.includes(f.subjectText) &&
        st.includes(f.objectText) &&
        words.has(RELATION_KEYWORD[f.relation]) &&
        (f.internal || (docs.includes(f.subjectText) && docs.includes(f.objectText))),
    );
    if (ok) grounded++;
  }
  return { recalls, grounded };
}
