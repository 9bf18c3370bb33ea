/**
 * Any Hugging Face `tokenizer.json` for inference, through @huggingface/tokenizers, behind the project's
 * {@link Tokenizer} interface. BOS/EOS ids come from `tokenizer_config.json`, `generation_config.json` and
 * `config.json` next to the tokenizer file when present.
 */
import { existsSync, promises as fsp, statSync } from "node:fs";
import path from "node:path";
import { Tokenizer as HfLibTokenizer } from "@huggingface/tokenizers";
import type { Tokenizer } from "../../util/types.js";

type TokenValue = string | { content?: string } | null | undefined;

function tokenContent(v: TokenValue): string | null {
  if (v == null) return null;
  if (typeof v === "string") return v;
  return typeof v.content === "string" ? v.content : null;
}

export interface HfTokenizerOptions {
  /** tokenizer_config.json contents (bos_token, eos_token, ...). */
  tokenizerConfig?: Record<string, unknown>;
  /** Extra EOS ids (e.g. generation_config.json eos_token_id). */
  eosTokenIds?: number[];
  bosTokenId?: number | null;
}

/** A tokenizer.json loaded through @huggingface/tokenizers. */
export class HfTokenizer implements Tokenizer {
  private readonly tok: HfLibTokenizer;
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /** The tokenizer.json object this was built from. */
  readonly json: Record<string, unknown>;

  constructor(json: Record<string, unknown>, opts: HfTokenizerOptions = {}) {
    const config = opts.tokenizerConfig ?? {};
    this.json = json;
    this.tok = new HfLibTokenizer(json, config);
    const vocab = this.tok.get_vocab(true);
    let max = -1;
    for (const id of vocab.values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    const idOf = (v: TokenValue): number | null => {
      const s = tokenContent(v);
      if (s === null) return null;
      return this.tok.token_to_id(s) ?? null;
    };
    this.bosTokenId = opts.bosTokenId !== undefined ? opts.bosTokenId : idOf(config.bos_token as TokenValue);
    const eos = new Set<number>();
    const e = idOf(config.eos_token as TokenValue);
    if (e !== null) eos.add(e);
    for (const x of opts.eosTokenIds ?? []) eos.add(x);
    if (eos.size === 0) {
      // Fall back to well-known end markers present in the vocabulary.
      for (const s of ["<|endoftext|>", "</s>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<eos>"]) {
        const id = this.tok.token_to_id(s);
        if (id !== undefined) {
          eos.add(id);
          break;
        }
      }
    }
    this.eosTokenIds = [...eos];
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    if (ids.length === 0) return "";
    return this.tok.decode(ids as number[], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }
}

async function readJsonIf(file: string): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(await fsp.readFile(file, "utf8")) as Record<string, unknown>;
  } catch {
    throw new Error(`${file} is not valid JSON`);
  }
}

/**
 * Load a tokenizer from a model folder (or a tokenizer.json path). EOS ids are gathered from tokenizer_config.json
 * `eos_token`, generation_config.json and config.json `eos_token_id`.
 */
export async function loadTokenizer(dirOrFile: string): Promise<HfTokenizer> {
  const isDir = existsSync(dirOrFile) && statSync(dirOrFile).isDirectory();
  const dir = isDir ? dirOrFile : path.dirname(dirOrFile);
  const file = isDir ? path.join(dirOrFile, "tokenizer.json") : dirOrFile;
  const json = await readJsonIf(file);
  if (!json) throw new Error(`${file}: tokenizer.json not found`);
  const tokenizerConfig = (await readJsonIf(path.join(dir, "tokenizer_config.json"))) ?? {};
  const eosIds: number[] = [];
  let bos: number | null | undefined;
  for (const f of ["generation_config.json", "config.json"]) {
    const j = await readJsonIf(path.join(dir, f));
    if (!j) continue;
    const e = j.eos_token_id;
    if (typeof e === "number") eosIds.push(e);
    else if (Array.isArray(e)) for (const x of e) if (typeof x === "number") eosIds.push(x);
    if (bos === undefined && typeof j.bos_token_id === "number") bos = j.bos_token_id;
  }
  const t = new HfTokenizer(json, { tokenizerConfig, eosTokenIds: eosIds });
  if (t.bosTokenId === null && bos !== undefined) {
    return new HfTokenizer(json, { tokenizerConfig, eosTokenIds: eosIds, bosTokenId: bos });
  }
  return t;
}
