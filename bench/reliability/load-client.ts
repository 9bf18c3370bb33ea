/**
 * Load client, run in its own process by bench/reliability.ts: N POST requests at C concurrent over keep-alive
 * connections (node:http Agent), bodies taken round-robin from a JSON file. Prints one JSON line: counts by status,
 * errors (connection failures, non-2xx), latency percentiles and throughput.
 *
 *   tsx bench/reliability/load-client.ts URL BODIES.json N C
 */
import http from "node:http";
import { readFileSync } from "node:fs";

const [url, bodiesFile, nArg, cArg] = process.argv.slice(2);
const n = Number(nArg);
const c = Number(cArg);
const bodies = (JSON.parse(readFileSync(bodiesFile, "utf8")) as unknown[]).map((b) => Buffer.from(JSON.stringify(b)));
const u = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: c });

function one(body: Buffer): Promise<{ status: number; ms: number; error?: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": String(body.length) },
      },
      (res) => {
        res.on("data", () => {});
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
        res.on("error", (e) => resolve({ status: 0, ms: performance.now() - t0, error: e.message }));
      },
    );
    req.on("error", (e) => resolve({ status: 0, ms: performance.now() - t0, error: e.message }));
    req.end(body);
  });
}

async function main(): Promise<void> {
  // warm-up (connections, JIT), not counted
  await Promise.all(Array.from({ length: c }, (_, i) => one(bodies[i % bodies.length])));
  const lat: number[] = [];
  const statuses: Record<string, number> = {};
  const errors: string[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        const i = next++;
        const r = await one(bodies[i % bodies.length]);
        lat.push(r.ms);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status < 200 || r.status >= 300) if (errors.length < 5) errors.push(r.error ?? `HTTP ${r.status}`);
      }
    }),
  );
  const wall = performance.now() - t0;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))];
  const failed =
    lat.length -
    Object.entries(statuses)
      .filter(([s]) => s.startsWith("2"))
      .reduce((a, [, v]) => a + v, 0);
  process.stdout.write(
    JSON.stringify({
      requests: lat.length,
      concurrency: c,
      statuses,
      failed,
      errors,
      rps: lat.length / (wall / 1000),
      p50: q(50),
      p90: q(90),
      p99: q(99),
      max: lat[lat.length - 1],
      wallMs: wall,
    }) + "\n",
  );
  agent.destroy();
}
void main();
