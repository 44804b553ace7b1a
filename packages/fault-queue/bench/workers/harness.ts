/**
 * What the traffic workers of the benchmark and the stress test share:
 * starting a worker on a TypeScript module (through ts-worker.mjs), a start
 * line (every worker says 'ready', then all get 'go' at once, so the timing
 * leaves out the start-up), and the worker side of that exchange.
 */
import {
  isMainThread,
  parentPort,
  type Transferable,
  Worker,
  workerData,
} from 'node:worker_threads';

/** Starts a worker that runs the TypeScript module at `moduleUrl` with `job` as its work. */
export function startTsWorker(
  moduleUrl: string,
  job: unknown,
  transferList: readonly Transferable[] = [],
): Worker {
  return new Worker(new URL('./ts-worker.mjs', import.meta.url), {
    workerData: { entry: moduleUrl, job },
    transferList: [...transferList],
  });
}

/**
 * Waits until every worker is ready, sends 'go' to all, and resolves with the
 * next message of each worker in `report` and the wall time from 'go' to the
 * last of them. Terminates every worker at the end, whatever happens.
 */
export async function runFromStartLine(
  workers: readonly Worker[],
  report: readonly Worker[],
): Promise<{ results: unknown[]; wallMs: number }> {
  try {
    await Promise.all(workers.map(nextMessage));
    const start = performance.now();
    const results = Promise.all(report.map(nextMessage));
    for (const w of workers) w.postMessage('go');
    return { results: await results, wallMs: performance.now() - start };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/**
 * In a worker started by `startTsWorker` for the module at `moduleUrl` (and
 * only there: traffic modules import each other), says 'ready', waits for
 * 'go', runs `work` on the job and posts what it returns.
 */
export function serveJob<J>(moduleUrl: string, work: (job: J) => unknown): void {
  const started = workerData as { entry?: string; job?: J } | null;
  if (isMainThread || parentPort === null || started?.entry === undefined) return;
  // tsx may add a query to a module's URL: compare the paths.
  if (new URL(started.entry).pathname !== new URL(moduleUrl).pathname) return;
  const port = parentPort;
  const job = started.job as J;
  port.once('message', async () => {
    port.postMessage(await work(job));
  });
  port.postMessage('ready');
}

function nextMessage(worker: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      worker.off('error', onError);
      resolve(message);
    };
    const onError = (error: Error): void => {
      worker.off('message', onMessage);
      reject(error);
    };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}
