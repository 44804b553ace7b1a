/**
 * The two ends of a ring between worker threads, shared by the stress test
 * and the benchmark. A producer writes `count` records, each carrying its
 * producer id, its sequence number and two words derived from them; the
 * consumer checks every record (right producer, next sequence, check words)
 * and counts what was lost, duplicated or torn.
 */
import { attachRing } from '../../src/index.js';
import { runFromStartLine, serveJob, startTsWorker } from './harness.js';

/** What a traffic worker is told. */
export interface TrafficJob {
  readonly role: 'producer' | 'consumer';
  readonly buffer: SharedArrayBuffer;
  /** Producer: its id. */
  readonly producer?: number;
  /** Producer: records to write. Consumer: records per producer. */
  readonly count: number;
  /** Consumer: how many producers. */
  readonly producers?: number;
  /** Give up after this long without progress (ms). */
  readonly stallMs?: number;
  /**
   * Producer: try each record once and move on when the ring refuses it (for
   * the 'drop' policy). Consumer: stop once every record is read or dropped.
   */
  readonly once?: boolean;
}

/** What the consumer reports. */
export interface TrafficReport {
  readonly received: number;
  /** Records whose sequence was below the producer's next: seen twice. */
  readonly duplicated: number;
  /** Sequence numbers skipped: records that never arrived. */
  readonly lost: number;
  /** Records whose producer id or check words were wrong. */
  readonly torn: number;
  /** The consumer gave up: no record for `stallMs`. */
  readonly stalled: boolean;
  readonly elapsedMs: number;
}

/** Records a producer writes before each commit. */
const PRODUCER_BATCH = 32;

/** The check words of a record: anything a torn or stale record would not repeat. */
export const checkWord = (producer: number, seq: number): number =>
  Math.imul(seq ^ 0x5bd1e995, producer + 0x9e3779b1) | 0;

function produce(job: TrafficJob): number {
  const ring = attachRing(job.buffer);
  const { words } = ring;
  const id = job.producer ?? 0;
  const wordsPerRecord = ring.wordsPerRecord;
  for (let seq = 0; seq < job.count; ) {
    // A run of up to PRODUCER_BATCH slots, written in place, published by one commit.
    const n = ring.claimRun(Math.min(PRODUCER_BATCH, job.count - seq));
    if (n === 0) {
      if (job.once)
        seq++; // refused and counted (dropped): move on
      else ring.waitWritableSync(50);
      continue;
    }
    for (let k = 0, w = ring.runStart; k < n; k++, seq++, w += wordsPerRecord) {
      words[w] = id;
      words[w + 1] = seq;
      const check = checkWord(id, seq);
      for (let i = 2; i < wordsPerRecord; i++) words[w + i] = (check + i) | 0;
    }
    ring.commit();
  }
  return job.count;
}

function consume(job: TrafficJob): TrafficReport {
  const ring = attachRing(job.buffer);
  const producers = job.producers ?? 1;
  const total = job.count * producers;
  const next = new Int32Array(producers);
  const wordsPerRecord = ring.wordsPerRecord;
  let received = 0;
  let duplicated = 0;
  let lost = 0;
  let torn = 0;
  const visit = (words: Int32Array, w: number): void => {
    received++;
    const id = words[w] as number;
    const seq = words[w + 1] as number;
    if (id < 0 || id >= producers) {
      torn++;
      return;
    }
    const check = checkWord(id, seq);
    for (let i = 2; i < wordsPerRecord; i++) {
      if (words[w + i] !== ((check + i) | 0)) {
        torn++;
        return;
      }
    }
    const expected = next[id] as number;
    if (seq === expected) next[id] = expected + 1;
    else if (seq < expected) duplicated++;
    else {
      lost += seq - expected;
      next[id] = seq + 1;
    }
  };
  const start = performance.now();
  let lastProgress = start;
  let stalled = false;
  while (received < total) {
    if (ring.drain(visit, total - received) > 0) {
      lastProgress = performance.now();
    } else if (job.once && received + ring.stats().dropped >= total) {
      break;
    } else if (
      !ring.waitReadableSync(50) &&
      performance.now() - lastProgress > (job.stallMs ?? 10_000)
    ) {
      stalled = true;
      break;
    }
  }
  for (let id = 0; id < producers; id++) lost += job.count - (next[id] as number);
  return { received, duplicated, lost, torn, stalled, elapsedMs: performance.now() - start };
}

/**
 * Runs one consumer and `producers` producer workers over `buffer` and
 * resolves with the consumer's report and the wall time from 'go' to its end.
 */
export async function runTraffic(
  buffer: SharedArrayBuffer,
  producers: number,
  perProducer: number,
  options: { stallMs?: number; once?: boolean } = {},
): Promise<TrafficReport & { wallMs: number }> {
  const { stallMs = 10_000, once = false } = options;
  const start = (job: TrafficJob) => startTsWorker(import.meta.url, job);
  const consumer = start({
    role: 'consumer',
    buffer,
    count: perProducer,
    producers,
    stallMs,
    once,
  });
  const producerWorkers = Array.from({ length: producers }, (_, producer) =>
    start({ role: 'producer', buffer, producer, count: perProducer, once }),
  );
  const { results, wallMs } = await runFromStartLine([consumer, ...producerWorkers], [consumer]);
  return { ...(results[0] as TrafficReport), wallMs };
}

serveJob<TrafficJob>(import.meta.url, (job) =>
  job.role === 'producer' ? produce(job) : consume(job),
);
