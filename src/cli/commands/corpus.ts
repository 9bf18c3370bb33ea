/** `searchrl corpus ...`: corpus ingestion (the KILT 100-word split). */
import { existsSync } from "node:fs";
import { splitKiltFile } from "../../corpus/index.js";
import type { RegisterCommands } from "../groups.js";

export const register: RegisterCommands = (_program, groups) => {
  groups.corpus
    .command("split-kilt")
    .description(
      "split KILT knowledge-source pages (JSONL) into R1-Searcher's 100-word passage TSV (byte-identical to split_kilt_to_100.py)",
    )
    .argument("<in>", "KILT JSONL (one page per line: wikipedia_title, text[]); .gz accepted")
    .argument("<out>", "output TSV: {id}\\t{title}   {words} per line (written atomically)")
    .option("--start-id <n>", "first passage id", "0")
    .option("--words <n>", "words per passage", "100")
    .option("--quiet", "no progress line")
    .action(async (input: string, out: string, o: { startId: string; words: string; quiet?: boolean }) => {
      if (!existsSync(input)) throw new Error(`corpus split-kilt: input ${input} does not exist`);
      const startId = Number(o.startId);
      const words = Number(o.words);
      if (!Number.isInteger(startId) || startId < 0)
        throw new Error("corpus split-kilt: --start-id must be an integer >= 0");
      if (!Number.isInteger(words) || words < 1) throw new Error("corpus split-kilt: --words must be an integer >= 1");
      const r = await splitKiltFile(input, out, { startId, chunkWords: words, progress: !o.quiet });
      process.stdout.write(
        `${r.pages} pages → ${r.passages} passages in ${r.seconds.toFixed(1)} s (${(r.pages / Math.max(r.seconds, 1e-3)).toFixed(0)} pages/s, ${(r.passages / Math.max(r.seconds, 1e-3)).toFixed(0)} passages/s) → ${out}\n`,
      );
    });
};
