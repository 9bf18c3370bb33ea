import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  aggregateMetrics,
  boolMapping,
  buildJudgePrompt,
  chatCompletionsUrl,
  coverExactMatch,
  coverExactMatch2,
  createJudgeClient,
  exactMatch,
  f1Score,
  formatUpstreamMetrics,
  judgeReferenceText,
  judgeVerdictLenient,
  judgeVerdictStrict,
  normalizeAnswer,
  pyRound1,
} from "./index.js";

describe("normalizeAnswer (§4.1)", () => {
  it("Unicode-aware article boundaries (2Wiki 'A Sangre Fría')", () => {
    expect(normalizeAnswer("A Sangre Fría")).toBe("sangre fría");
    // what an ASCII \b would do (the trap): the "a" after "í" counts as a separate word
    expect("sangre fría".replace(/\b(a|an|the)\b/g, " ").trim()).toBe("sangre frí");
    expect(normalizeAnswer("The Ünited ÁN the_end a1 an-b")).toBe("ünited án end a1 b");
    expect(normalizeAnswer("fri\u0301a")).toBe("fri\u0301"); // a combining mark is not a word character in Python
  });
  it("underscore, punctuation (incl. ‘ ’ ´) to spaces, Python whitespace", () => {
    expect(normalizeAnswer("Rock_and_Roll’s `best´ (1999)!")).toBe("rock and roll s best 1999");
    expect(normalizeAnswer("a\x1cb\x85c\u3000d")).toBe("b c d");
    expect(normalizeAnswer("x\ufeffy")).toBe("x\ufeffy");
  });
  it("boolMapping is exact and case-sensitive", () => {
    expect(boolMapping("True")).toBe("yes");
    expect(boolMapping("False")).toBe("no");
    expect(boolMapping("true")).toBe("true");
    expect(boolMapping(" True")).toBe(" True");
  });
});

describe("scores (§4.2)", () => {
  it("EM and Cover-EM", () => {
    expect(exactMatch("the Eiffel Tower.", "Eiffel tower")).toBe(true);
    expect(coverExactMatch("Shakespeare, William", "William Shakespeare")).toBe(true);
    expect(coverExactMatch2("Shakespeare, William", "William Shakespeare")).toBe(false);
    expect(coverExactMatch2("it was William Shakespeare", "William Shakespeare")).toBe(true);
    expect(coverExactMatch("Shakespeare", "William Shakespeare")).toBe(false);
    expect(coverExactMatch("True", "yes")).toBe(true);
    // split(" ") semantics: an empty normalized gold is [""], covered only by an empty prediction
    expect(coverExactMatch("", "The")).toBe(true);
    expect(coverExactMatch("x", "")).toBe(false);
    expect(coverExactMatch("a", "the")).toBe(true);
    expect(coverExactMatch("Paris", ["London", "paris"])).toBe(true);
  });
  it("F1 with precision and recall, yes/no/noanswer rule, max over golds", () => {
    expect(f1Score("William Shakespeare", "William Shakespeare")).toEqual({ f1: 1, precision: 1, recall: 1 });
    const r = f1Score("Shakespeare", ["Marlowe", "William Shakespeare"]);
    expect(r.precision).toBe(1);
    expect(r.recall).toBe(0.5);
    expect(r.f1).toBeCloseTo(2 / 3, 12);
    expect(f1Score("x y y", "y y z")).toEqual({ f1: 2 / 3, precision: 2 / 3, recall: 2 / 3 });
    expect(f1Score("yes", "no")).toEqual({ f1: 0, precision: 0, recall: 0 });
    expect(f1Score("yes it is", "yes").f1).toBe(0);
    expect(f1Score("True", "yes").f1).toBe(1);
    expect(f1Score("noanswer", "no answer").f1).toBe(0);
    expect(f1Score("", "x")).toEqual({ f1: 0, precision: 0, recall: 0 });
  });
  it("aggregation reads the first 2,000 records; judge share of exact 'True'", () => {
    const recs = Array.from({ length: 2001 }, (_, i) => ({
      answer: "Paris",
      pred_ans: i === 2000 ? "Paris" : i % 2 === 0 ? "Paris" : "Lyon",
    }));
    const s = aggregateMetrics(recs);
    expect(s.count).toBe(2000);
    expect(s.em).toBe(0.5);
    expect(s.cem).toBe(0.5);
    expect(s.accNum).toBe(1000);
    expect(s.judge).toBeNull();
    const j = aggregateMetrics([
      { answer: "a", pred_ans: "b", gpt4o_output: "True" },
      { answer: "a", pred_ans: "b", gpt4o_output: "True." },
      { answer: "a", pred_ans: "b", gpt4o_output: "true" },
      { answer: "a", pred_ans: "b" },
    ]);
    expect(j.judge).toBeCloseTo(1 / 3, 12);
    expect(j.judged).toBe(3);
    expect(aggregateMetrics([{ answer: true, pred_ans: "Yes" }]).em).toBe(1);
    expect(
      formatUpstreamMetrics(
        aggregateMetrics([
          { answer: "x", pred_ans: "x" },
          { answer: "x", pred_ans: "x y" },
        ]),
      ),
    ).toBe("em:50.0, cem:100.0, f1:83.3, acc_num:2");
  });
  it("Python round(x, 1) including exact ties (half to even)", () => {
    expect(pyRound1(12.25)).toBe("12.2");
    expect(pyRound1(12.75)).toBe("12.8");
    expect(pyRound1(0.05)).toBe("0.1");
    expect(pyRound1(66.66666666666667)).toBe("66.7");
    expect(pyRound1(100)).toBe("100.0");
    expect(pyRound1(0)).toBe("0.0");
  });
});

describe("LLM judge (§4.3)", () => {
  it("prompt and reference mapping", () => {
    expect(buildJudgePrompt({ question: "Q?", reference: false, prediction: " no " })).toBe(
      "Given a Question and its Golden Answer, verify whether the Predicted Answer is correct. The prediction is correct if it fully aligns with the meaning and key information of the Golden Answer. Respond with True if the prediction is correct and False otherwise.\n\nQuestion: Q?\nGolden Answer: no\nPredicted Answer:  no \n    ",
    );
    expect(judgeReferenceText(true)).toBe("yes");
    expect(judgeReferenceText(0)).toBe("no");
    expect(judgeReferenceText(["a", "it's"])).toBe(`['a', "it's"]`);
    expect(buildJudgePrompt({ question: "{reference}", reference: "$&", prediction: "x" })).toContain(
      "Question: {reference}\nGolden Answer: $&\n",
    );
  });
  it("strict and lenient verdicts", () => {
    expect(judgeVerdictStrict("True")).toBe(true);
    expect(judgeVerdictStrict("True.")).toBe(false);
    expect(judgeVerdictStrict(" True")).toBe(false);
    expect(judgeVerdictLenient(" **True**.")).toBe(true);
    expect(judgeVerdictLenient("false, because")).toBe(false);
    expect(judgeVerdictLenient("Incorrect")).toBe(false);
    expect(judgeVerdictLenient("Trueish")).toBeNull();
    expect(judgeVerdictLenient("I think so")).toBeNull();
    expect(judgeVerdictLenient(null)).toBeNull();
  });
  it("completion URL", () => {
    expect(chatCompletionsUrl("http://h:1")).toBe("http://h:1/v1/chat/completions");
    expect(chatCompletionsUrl("https://api.example.com/v1/")).toBe("https://api.example.com/v1/chat/completions");
    expect(chatCompletionsUrl("http://h/v1/chat/completions")).toBe("http://h/v1/chat/completions");
  });

  // Test double for a paid API: a scripted local server speaking the real OpenAI chat-completions HTTP shape.
  describe("client against a scripted OpenAI-compatible server (test double for a paid API)", () => {
    let url = "";
    const seen: Array<{ auth: string | undefined; body: Record<string, unknown> }> = [];
    let failNext = 0;
    let malformed = false;
    const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      let data = "";
      req.on("data", (c) => (data += c));
      req.on("end", () => {
        if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
          res
            .writeHead(404, { "content-type": "application/json" })
            .end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
          return;
        }
        const body = JSON.parse(data) as { messages: Array<{ content: string }> };
        seen.push({ auth: req.headers.authorization, body });
        if (failNext > 0) {
          failNext--;
          res
            .writeHead(503, { "content-type": "application/json" })
            .end(JSON.stringify({ error: { message: "overloaded", type: "server_error" } }));
          return;
        }
        if (malformed) {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ id: "x", choices: [] }));
          return;
        }
        const prompt = body.messages[0].content;
        const pred = /Predicted Answer: (.*)\n/.exec(prompt)?.[1] ?? "";
        const gold = /Golden Answer: (.*)\n/.exec(prompt)?.[1] ?? "";
        const content = pred.toLowerCase().includes(gold.toLowerCase()) ? "True" : "False";
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            id: "chatcmpl-test",
            object: "chat.completion",
            created: 1700000000,
            model: "gpt-4o-mini-2024-07-18",
            choices: [
              {
                index: 0,
                message: { role: "assistant", content, refusal: null },
                logprobs: null,
                finish_reason: "stop",
              },
            ],
            usage: { prompt_tokens: 70, completion_tokens: 1, total_tokens: 71 },
            system_fingerprint: "fp_test",
          }),
        );
      });
    });
    beforeAll(async () => {
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });

    it("sends the upstream request and reads the verdict", async () => {
      const client = createJudgeClient({ baseUrl: url, apiKey: "sk-test", backoffMs: 10 });
      const r = await client.judge({ question: "Capital of France?", reference: "Paris", prediction: "paris" });
      expect(r).toEqual({ output: "True", correct: true, lenient: true });
      const last = seen[seen.length - 1];
      expect(last.auth).toBe("Bearer sk-test");
      expect(last.body).toEqual({
        model: "gpt-4o-mini",
        max_tokens: 1024,
        messages: [
          {
            role: "user",
            content: buildJudgePrompt({ question: "Capital of France?", reference: "Paris", prediction: "paris" }),
          },
        ],
      });
      const many = await client.judgeMany(
        [
          { question: "a", reference: "x", prediction: "x" },
          { question: "b", reference: "x", prediction: "y" },
          { question: "c", reference: false, prediction: "No" },
        ],
        2,
      );
      expect(many.map((m) => m.correct)).toEqual([true, false, true]);
    });
    it("retries 503 and rejects a wrong response shape", async () => {
      const client = createJudgeClient({ baseUrl: url + "/v1", backoffMs: 5, attempts: 3 });
      failNext = 2;
      expect((await client.judge({ question: "q", reference: "x", prediction: "x" })).output).toBe("True");
      malformed = true;
      await expect(client.judge({ question: "q", reference: "x", prediction: "x" })).rejects.toThrow(
        /unexpected response shape/,
      );
      malformed = false;
    });
  });
});

describe("punctuation set", () => {
  it("exactly Python's string.punctuation plus ‘ ’ ´ become spaces", () => {
    const PY_PUNCT = new Set([..."!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "\u2018", "\u2019", "\u00b4"]);
    for (let c = 0x21; c <= 0x7e; c++) {
      const ch = String.fromCharCode(c);
      const expected = PY_PUNCT.has(ch) ? "x y" : `x${ch.toLowerCase()}y`;
      expect(normalizeAnswer(`x${ch}y`), JSON.stringify(ch)).toBe(expected);
    }
    for (const ch of ["\u2018", "\u2019", "\u00b4"]) expect(normalizeAnswer(`x${ch}y`)).toBe("x y");
    for (const ch of ["¡", "¿", "«", "»", "“", "”", "—", "\u201a"]) expect(normalizeAnswer(`x${ch}y`)).toBe(`x${ch}y`);
  });
});
