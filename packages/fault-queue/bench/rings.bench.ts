/**
 * `npm run bench`: millions of 40-byte records per second through the rings,
 * in one thread and between worker threads, each beside a plain reference
 * measured in the same run (a JS array queue in one thread; postMessage in
 * batches between threads). Cases run in interleaved rounds and the median is
 * kept, so a noisy moment hits every case alike. Prints a table and writes
 * bench/results.json. Progress goes to stderr.
 *
 * BENCH_RECORDS sets the records per worker run (default 5,000,000);
 * BENCH_ROUNDS the rounds of the worker runs (default 3).
 */
import { writeFileSync } from 'node:fs';
import { MpscRing, type RingBase, SpscRing } from '../src/index.js';
import { runPostTraffic } from './workers/post-traffic.js';
import { runTraffic } from './workers/ring-traffic.js';

const WORDS = 10; // 40-byte records: the size of iommu_hwpt_pgfault
const BATCH = 256;
const LOCAL_RECORDS = 4_000_000;
const LOCAL_ROUNDS = 9;
const WORKER_RECORDS = Number(process.env.BENCH_RECORDS ?? 5_000_000);
const WORKER_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const POST_BATCH = 1024;

const progress = (text: string): void => {
  process.stderr.write(text);
};

// ---- one thread -----------------------------------------------------------------

type Loop = (records: number) => number;

/**
 * One loop function per case, made by `new Function` so that V8 keeps separate
 * type feedback for each (the ring calls stay monomorphic, as in real use).
 */
function makeLoop(body: string, ...args: unknown[]): Loop {
  const names = args.map((_, i) => `a${i}`);
  const factory = new Function(...names, `return function loop(records) { ${body} };`);
  return factory(...args) as Loop;
}

/**
 * Producer and consumer in one thread: BATCH records claimed as runs and
 * written in place, one commit, one drain that reads each record.
 */
function ringLocal(ring: RingBase): Loop {
  return makeLoop(
    `const ring = a0; const words = ring.words; let sum = 0;
    const visit = (w, i) => { sum = (sum + w[i + 1]) | 0; };
    for (let seq = 0; seq < records; ) {
      for (let left = ${BATCH}; left > 0; ) {
        const n = ring.claimRun(left);
        for (let k = 0, w = ring.runStart; k < n; k++, seq++, w += ${WORDS}) {
          words[w] = 1;
          words[w + 1] = seq;
          for (let i = 2; i < ${WORDS}; i++) words[w + i] = seq + i;
        }
        left -= n;
      }
      ring.commit();
      ring.drain(visit);
    }
    return sum;`,
    ring,
  );
}

/**
 * The same, one record at a time: `claim()` and `commit()` (an atomic store)
 * per record, `peek()` and `release()` (another) per record. (Not `drain`:
 * its callback site would see a second function and stop being inlined.)
 */
function ringLocalEach(ring: RingBase): Loop {
  return makeLoop(
    `const ring = a0; const words = ring.words; let sum = 0;
    for (let seq = 0; seq < records; ) {
      for (let b = 0; b < ${BATCH}; b++, seq++) {
        const w = ring.claim();
        words[w] = 1;
        words[w + 1] = seq;
        for (let i = 2; i < ${WORDS}; i++) words[w + i] = seq + i;
        ring.commit();
      }
      for (let r = ring.peek(); r >= 0; r = ring.peek()) {
        sum = (sum + words[r + 1]) | 0;
        ring.release();
      }
    }
    return sum;`,
    ring,
  );
}

/** The same through the copying API: push(Uint8Array) and pop(Uint8Array), a commit each. */
function ringLocalCopy(ring: RingBase): Loop {
  return makeLoop(
    `const ring = a0; const record = new Uint8Array(${WORDS * 4});
    const words = new Int32Array(record.buffer); const out = new Uint8Array(${WORDS * 4});
    let sum = 0;
    for (let seq = 0; seq < records; ) {
      for (let b = 0; b < ${BATCH}; b++, seq++) {
        words[1] = seq;
        ring.push(record);
      }
      while (ring.pop(out)) sum = (sum + out[4]) | 0;
    }
    return sum;`,
    ring,
  );
}

/** The reference: what one writes without a ring, a JS array of Int32Array records. */
function arrayLocal(): Loop {
  return makeLoop(
    `let queue = []; let head = 0; let sum = 0;
    for (let seq = 0; seq < records; ) {
      for (let b = 0; b < ${BATCH}; b++, seq++) {
        const r = new Int32Array(${WORDS});
        r[0] = 1;
        r[1] = seq;
        for (let i = 2; i < ${WORDS}; i++) r[i] = seq + i;
        queue.push(r);
      }
      while (head < queue.length) sum = (sum + queue[head++][1]) | 0;
      queue = [];
      head = 0;
    }
    return sum;`,
  );
}

interface Case {
  readonly name: string;
  readonly run: () => number;
  readonly rates: number[];
}

function localCases(): Case[] {
  const ring = (kind: 'spsc' | 'mpsc'): RingBase =>
    (kind === 'spsc' ? SpscRing : MpscRing).create({ recordSize: 40, capacity: 1024 });
  const cases: Array<[string, Loop]> = [
    ['spsc_local_mrec_s', ringLocal(ring('spsc'))],
    ['spsc_local_per_record_mrec_s', ringLocalEach(ring('spsc'))],
    ['mpsc_local_mrec_s', ringLocal(ring('mpsc'))],
    ['spsc_local_copy_mrec_s', ringLocalCopy(ring('spsc'))],
    ['ref_array_local_mrec_s', arrayLocal()],
  ];
  return cases.map(([name, loop]) => ({ name, run: () => loop(LOCAL_RECORDS), rates: [] }));
}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

// ---- main -----------------------------------------------------------------------

const results: Record<string, number> = {};
const round2 = (n: number): number => Math.round(n * 100) / 100;

progress(`one thread: ${LOCAL_RECORDS / 1e6} M records per run, ${LOCAL_ROUNDS} rounds `);
const locals = localCases();
for (let w = 0; w < 3; w++) for (const c of locals) c.run(); // warm up into optimized code
for (let r = 0; r < LOCAL_ROUNDS; r++) {
  for (const c of locals) {
    const t0 = performance.now();
    c.run();
    c.rates.push(LOCAL_RECORDS / (performance.now() - t0) / 1e3);
  }
  progress('.');
}
progress(' done\n');
for (const c of locals) results[c.name] = round2(median(c.rates));

interface WorkerCase {
  readonly name: string;
  readonly records: number;
  readonly run: () => Promise<{ wallMs: number; ok: boolean }>;
  readonly rates: number[];
}

const perProducer4 = Math.floor(WORKER_RECORDS / 4);
const workerCases: WorkerCase[] = [
  {
    name: 'spsc_workers_mrec_s',
    records: WORKER_RECORDS,
    run: async () => {
      const ring = SpscRing.create({ recordSize: 40, capacity: 4096 });
      const r = await runTraffic(ring.buffer as SharedArrayBuffer, 1, WORKER_RECORDS);
      return {
        wallMs: r.wallMs,
        ok: r.received === WORKER_RECORDS && r.lost + r.duplicated + r.torn === 0,
      };
    },
    rates: [],
  },
  {
    name: 'ref_postmessage_workers_mrec_s',
    records: WORKER_RECORDS,
    run: async () => {
      const r = await runPostTraffic(1, WORKER_RECORDS, POST_BATCH);
      return { wallMs: r.wallMs, ok: r.received === WORKER_RECORDS && r.bad === 0 };
    },
    rates: [],
  },
  {
    name: 'mpsc4_workers_mrec_s',
    records: perProducer4 * 4,
    run: async () => {
      const ring = MpscRing.create({ recordSize: 40, capacity: 4096 });
      const r = await runTraffic(ring.buffer as SharedArrayBuffer, 4, perProducer4);
      return {
        wallMs: r.wallMs,
        ok: r.received === perProducer4 * 4 && r.lost + r.duplicated + r.torn === 0,
      };
    },
    rates: [],
  },
  {
    name: 'ref_postmessage_mpsc4_workers_mrec_s',
    records: perProducer4 * 4,
    run: async () => {
      const r = await runPostTraffic(4, perProducer4, POST_BATCH);
      return { wallMs: r.wallMs, ok: r.received === perProducer4 * 4 && r.bad === 0 };
    },
    rates: [],
  },
];

progress(
  `worker threads: ${WORKER_RECORDS / 1e6} M records per run, ${WORKER_ROUNDS} rounds, ${workerCases.length} cases\n`,
);
for (let r = 0; r < WORKER_ROUNDS; r++) {
  for (const c of workerCases) {
    progress(`  round ${r + 1}/${WORKER_ROUNDS} ${c.name} ... `);
    const { wallMs, ok } = await c.run();
    if (!ok) throw new Error(`${c.name}: records lost, duplicated or torn`);
    const rate = c.records / wallMs / 1e3;
    c.rates.push(rate);
    progress(`${rate.toFixed(2)} M/s\n`);
  }
}
for (const c of workerCases) results[c.name] = round2(median(c.rates));

// ---- report ---------------------------------------------------------------------

const rows: Array<[string, string, number, string]> = [
  ['SPSC ring, one thread', 'spsc_local_mrec_s', results.spsc_local_mrec_s ?? 0, '>= 20'],
  [
    'SPSC ring, record by record',
    'spsc_local_per_record_mrec_s',
    results.spsc_local_per_record_mrec_s ?? 0,
    '',
  ],
  ['MPSC ring, one thread', 'mpsc_local_mrec_s', results.mpsc_local_mrec_s ?? 0, ''],
  ['SPSC ring, push/pop copies', 'spsc_local_copy_mrec_s', results.spsc_local_copy_mrec_s ?? 0, ''],
  ['JS array queue (reference)', 'ref_array_local_mrec_s', results.ref_array_local_mrec_s ?? 0, ''],
  ['SPSC ring, 2 workers', 'spsc_workers_mrec_s', results.spsc_workers_mrec_s ?? 0, '>= 5'],
  [
    'postMessage x1024 (reference)',
    'ref_postmessage_workers_mrec_s',
    results.ref_postmessage_workers_mrec_s ?? 0,
    '',
  ],
  [
    'MPSC ring, 4 producers + 1',
    'mpsc4_workers_mrec_s',
    results.mpsc4_workers_mrec_s ?? 0,
    'reported',
  ],
  [
    'postMessage x1024, 4 + 1 (ref)',
    'ref_postmessage_mpsc4_workers_mrec_s',
    results.ref_postmessage_mpsc4_workers_mrec_s ?? 0,
    '',
  ],
];
console.log('\nfault-queue rings: 40-byte records, M records/s (median)');
console.log(`${'case'.padEnd(32)}${'metric'.padEnd(40)}${'M rec/s'.padStart(9)}  target`);
for (const [label, metric, value, target] of rows) {
  console.log(`${label.padEnd(32)}${metric.padEnd(40)}${value.toFixed(2).padStart(9)}  ${target}`);
}
results.spsc_local_vs_ref_array_ratio = round2(
  (results.spsc_local_mrec_s ?? 0) / (results.ref_array_local_mrec_s ?? 1),
);
results.spsc_workers_vs_ref_postmessage_ratio = round2(
  (results.spsc_workers_mrec_s ?? 0) / (results.ref_postmessage_workers_mrec_s ?? 1),
);
writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
console.log('wrote bench/results.json');
