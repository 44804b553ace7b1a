/** `--format json`: the run's results as one JSON document for tools. */
import type { RunResult } from '../run/runner.js';
import { toJson } from '../util/hex.js';

/** The JSON document of a run (bigints as `0x` hex strings). */
export function runReportJson(result: RunResult): string {
  const { scenario: sc } = result;
  return `${toJson(
    {
      scenario: { name: sc.name, file: sc.file, description: sc.description },
      host: sc.host,
      exitCode: result.exitCode,
      counts: result.counts,
      steps: result.steps,
      snapshots: result.snapshots,
      walks: result.walks,
      final: result.final,
      timing: { totalMs: result.totalMs, setupMs: result.setupMs },
    },
    2,
  )}\n`;
}
