/**
 * Test helpers: run the program in-process with captured output, spawn the
 * built binary, temporary directories, and a small XML well-formedness check.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.js';
import { runScenario } from '../src/run/runner.js';
import { loadScenario, shippedScenarioPath } from '../src/scenario/shipped.js';

/** What a run of the program printed and returned. */
export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `iommufd-sim ARGS` in this process, in `cwd`. */
export function cli(args: readonly string[], cwd = process.cwd(), tty = false): Ran {
  let stdout = '';
  let stderr = '';
  const code = main(args, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    stderrIsTTY: tty,
    cwd,
  });
  return { code, stdout, stderr };
}

/** The package directory. */
export const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
/** The built program. */
export const BIN = join(PACKAGE_DIR, 'dist', 'bin.js');

/** `node dist/bin.js ARGS` as a child process. */
export function spawnCli(args: readonly string[], cwd = PACKAGE_DIR): Ran {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh temporary directory. */
export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'iommufd-sim-cli-'));
}

/** Run a shipped scenario in-process. */
export function runShipped(name: string) {
  const file = shippedScenarioPath(name);
  if (file === undefined) throw new Error(`no shipped scenario ${name}`);
  return runScenario(loadScenario(readFileSync(file, 'utf8'), file));
}

/** No stack frame in `text` (user errors never print one). */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+[(:]\S+:\d+/m.test(text) || /Error: .*\n\s+at /.test(text);
}

/**
 * A minimal XML well-formedness check for the SVGs we write: one root, tags
 * properly nested and closed, attributes quoted, entities known. Returns the
 * problem, or undefined.
 */
export function xmlProblem(text: string): string | undefined {
  const stack: string[] = [];
  const token =
    /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|([^<]+)|(<)/g;
  let roots = 0;
  for (const m of text.matchAll(token)) {
    const [, close, name, , selfClose, textPart, stray] = m;
    if (stray !== undefined) return `a stray '<' at ${m.index}`;
    if (textPart !== undefined) {
      if (stack.length === 0 && textPart.trim() !== '') return 'text outside the root element';
      const bad = textPart.match(/&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/);
      if (bad !== null) return `an unescaped '&' near ${JSON.stringify(textPart.slice(0, 40))}`;
      continue;
    }
    if (name === undefined) continue;
    if (close === '/') {
      if (stack.pop() !== name) return `</${name}> closes the wrong element`;
    } else if (selfClose !== '/') {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  if (stack.length > 0) return `<${stack.at(-1)}> is never closed`;
  if (roots !== 1) return `${roots} root elements`;
  return undefined;
}
