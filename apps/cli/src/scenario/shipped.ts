/**
 * The scenarios shipped with the program (apps/cli/scenarios/*.yaml), the
 * default one among them, found beside the built code.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HostConfig } from '@iommufd-sim/iommufd-core';
import { parseScenario } from './parse.js';
import type { Scenario } from './types.js';

/** The directory of the shipped scenario files. */
export const SCENARIO_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));

/** The name of the scenario `iommufd-sim` runs without arguments. */
export const DEFAULT_SCENARIO = 'default';

/** Names of the shipped scenarios, the default first. */
export function shippedScenarioNames(): string[] {
  if (!existsSync(SCENARIO_DIR)) return [];
  const names = readdirSync(SCENARIO_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort();
  return [DEFAULT_SCENARIO, ...names.filter((n) => n !== DEFAULT_SCENARIO)];
}

/** The path of a shipped scenario, or undefined. */
export function shippedScenarioPath(name: string): string | undefined {
  const base = name.endsWith('.yaml') ? name.slice(0, -5) : name;
  if (!/^[A-Za-z0-9_-]+$/.test(base)) return undefined;
  const path = `${SCENARIO_DIR}${base}.yaml`;
  return existsSync(path) ? path : undefined;
}

let defaultHostCache: HostConfig | undefined;

/** The default scenario's host: the host of a scenario file without `host:`. */
export function defaultHost(): HostConfig {
  if (defaultHostCache === undefined) {
    const path = shippedScenarioPath(DEFAULT_SCENARIO);
    if (path === undefined) throw new Error(`the default scenario is missing from ${SCENARIO_DIR}`);
    defaultHostCache = parseScenario(readFileSync(path, 'utf8'), path).host;
  }
  return defaultHostCache;
}

/** Parse scenario text, with the default host for a file that has none. */
export function loadScenario(source: string, file: string): Scenario {
  return parseScenario(source, file, { defaultHost });
}
