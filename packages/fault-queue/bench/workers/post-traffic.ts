/**
 * The reference the rings are measured against across threads: the same
 * records (producer id, sequence, check words), sent with postMessage over a
 * MessageChannel in batches of `batch` records (one transferred Int32Array per
 * batch), and checked by the consumer the same way.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { runFromStartLine, serveJob, startTsWorker } from './harness.js';
import { checkWord } from './ring-traffic.js';

const WORDS = 10; // 40-byte records, as in the ring runs

interface PostJob {
  readonly role: 'producer' | 'consumer';
  /** Producer: where it posts. Consumer: one port per producer. */
  readonly ports: MessagePort[];
  readonly producer?: number;
  readonly count: number;
  readonly producers?: number;
  readonly batch: number;
}

function produce(job: PostJob): void {
  const id = job.producer ?? 0;
  for (let seq = 0; seq < job.count; ) {
    const n = Math.min(job.batch, job.count - seq);
    const words = new Int32Array(n * WORDS);
    for (let r = 0; r < n; r++, seq++) {
      const w = r * WORDS;
      words[w] = id;
      words[w + 1] = seq;
      const check = checkWord(id, seq);
      for (let i = 2; i < WORDS; i++) words[w + i] = (check + i) | 0;
    }
    (job.ports[0] as MessagePort).postMessage(words, [words.buffer]);
  }
}

function consume(job: PostJob): Promise<{ received: number; bad: number }> {
  const producers = job.producers ?? 1;
  const total = job.count * producers;
  const next = new Int32Array(producers);
  let received = 0;
  let bad = 0;
  return new Promise((resolve) => {
    const onBatch = (words: Int32Array): void => {
      for (let w = 0; w < words.length; w += WORDS) {
        const id = words[w] as number;
        const seq = words[w + 1] as number;
        // The same checks as the ring consumer: producer, sequence, every check word.
        const check = checkWord(id, seq);
        let torn = id < 0 || id >= producers || seq !== next[id];
        for (let i = 2; i < WORDS && !torn; i++) torn = words[w + i] !== ((check + i) | 0);
        if (torn) bad++;
        next[id] = seq + 1;
        received++;
      }
      if (received >= total) {
        for (const port of job.ports) port.close();
        resolve({ received, bad });
      }
    };
    for (const port of job.ports) port.on('message', onBatch);
  });
}

/**
 * Runs `producers` producer workers posting to one consumer worker and
 * resolves with the consumer's counts and the wall time from 'go' to its end.
 */
export async function runPostTraffic(
  producers: number,
  perProducer: number,
  batch: number,
): Promise<{ received: number; bad: number; wallMs: number }> {
  // One channel per producer, straight to the consumer: no hop through here.
  const channels = Array.from({ length: producers }, () => new MessageChannel());
  const consumerPorts = channels.map((c) => c.port2);
  const consumer = startTsWorker(
    import.meta.url,
    { role: 'consumer', ports: consumerPorts, count: perProducer, producers, batch },
    consumerPorts,
  );
  const producerWorkers = channels.map(({ port1 }, producer) =>
    startTsWorker(
      import.meta.url,
      { role: 'producer', ports: [port1], producer, count: perProducer, batch },
      [port1],
    ),
  );
  const { results, wallMs } = await runFromStartLine([consumer, ...producerWorkers], [consumer]);
  return { ...(results[0] as { received: number; bad: number }), wallMs };
}

serveJob<PostJob>(import.meta.url, (job) => {
  if (job.role === 'consumer') return consume(job);
  produce(job);
  return 'done';
});
