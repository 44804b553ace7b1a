/**
 * The `iommufd-sim` program: commands, their options and exit codes. All
 * output goes through a {@link CliIo}, so tests run it in-process; user
 * errors print one clear message, never a stack trace.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { explainFailures, formatExplanation } from '../report/explain.js';
import { runReportJson } from '../report/json.js';
import { formatRunReport, wrap } from '../report/text.js';
import { type RunResult, runScenario } from '../run/runner.js';
import { ScenarioError } from '../scenario/parse.js';
import { formatStepReference, scenarioJsonSchema } from '../scenario/reference.js';
import {
  DEFAULT_SCENARIO,
  loadScenario,
  SCENARIO_DIR,
  shippedScenarioNames,
  shippedScenarioPath,
} from '../scenario/shipped.js';
import type { Scenario } from '../scenario/types.js';
import { runPictures } from '../svg/pictures.js';
import type { Trace } from '../trace/events.js';
import { decorateEvent, formatTraceText } from '../trace/format.js';
import { parseTraceJsonl, replayTrace, TraceFileError } from '../trace/replay.js';
import { toJson } from '../util/hex.js';
import { formatOption, type OptionSpec, type ParsedArgs, parseArgs, UsageError } from './args.js';
import { EXIT, HELP } from './help.js';
import { Progress } from './progress.js';

/** Where the program reads and writes. */
export interface CliIo {
  /** Write to standard output. */
  stdout(text: string): void;
  /** Write to standard error. */
  stderr(text: string): void;
  /** Standard error is a terminal (progress is drawn in place). */
  readonly stderrIsTTY: boolean;
  /** The directory relative paths start from. */
  readonly cwd: string;
}

const RUN_SPEC: OptionSpec = {
  format: true,
  svg: true,
  verbose: false,
  'keep-going': false,
  progress: false,
  help: false,
};

const SPECS: Readonly<Record<string, OptionSpec>> = {
  default: RUN_SPEC,
  run: RUN_SPEC,
  trace: { format: true, out: true, progress: false, help: false },
  replay: { format: true, help: false },
  explain: { format: true, progress: false, help: false },
  svg: { out: true, progress: false, help: false },
  scenarios: { format: true, help: false },
  steps: { format: true, help: false },
  help: { help: false },
};

class Cli {
  constructor(private readonly io: CliIo) {}

  path(p: string): string {
    return isAbsolute(p) ? p : resolve(this.io.cwd, p);
  }

  /** A path as short as it can be said from the working directory. */
  display(file: string): string {
    const rel = relative(this.io.cwd, file);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
  }

  /** The scenario a command names: a file, a shipped name, or the default. */
  scenario(arg: string | undefined, command: string): Scenario {
    let file: string;
    if (arg === undefined) {
      file = shippedScenarioPath(DEFAULT_SCENARIO) ?? `${SCENARIO_DIR}${DEFAULT_SCENARIO}.yaml`;
    } else if (existsSync(this.path(arg)) && statSync(this.path(arg)).isFile()) {
      file = this.path(arg);
    } else {
      const shipped = shippedScenarioPath(arg);
      if (shipped === undefined) {
        throw new UsageError(
          `${command}: no file '${arg}' and no shipped scenario of that name (shipped: ${shippedScenarioNames().join(', ')})`,
          command,
        );
      }
      file = shipped;
    }
    let source: string;
    try {
      source = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`${command}: cannot read '${file}': ${(e as Error).message}`, command);
    }
    return loadScenario(source, this.display(file));
  }

  run(scenario: Scenario, args: ParsedArgs): RunResult {
    const progress = new Progress(
      { write: (t) => this.io.stderr(t), isTTY: this.io.stderrIsTTY },
      this.io.stderrIsTTY || args.options.has('progress'),
    );
    try {
      return runScenario(scenario, {
        onStep: (done, total, title) => progress.step(done, total, title),
        keepGoing: args.options.has('keep-going'),
      });
    } finally {
      progress.done();
    }
  }

  writeSvgs(result: RunResult, dir: string): string[] {
    const target = this.path(dir);
    mkdirSync(target, { recursive: true });
    const files: string[] = [];
    for (const p of runPictures(result)) {
      const file = join(target, p.file);
      writeFileSync(file, p.svg);
      files.push(file);
    }
    return files;
  }

  /** `run`, `default`. */
  report(command: string, args: ParsedArgs): number {
    const format = formatOption(args, command);
    if (command === 'run' && args.positionals.length === 0) {
      throw new UsageError(
        'run: which scenario? (iommufd-sim run FILE.yaml, or a name from iommufd-sim scenarios)',
        command,
      );
    }
    if (args.positionals.length > (command === 'run' ? 1 : 0)) {
      throw new UsageError(`${command}: unexpected '${args.positionals.at(-1) ?? ''}'`, command);
    }
    const scenario = this.scenario(args.positionals[0], command);
    const result = this.run(scenario, args);
    const svg = args.options.get('svg');
    const files = typeof svg === 'string' ? this.writeSvgs(result, svg) : [];
    if (format === 'json') this.io.stdout(runReportJson(result));
    else {
      this.io.stdout(formatRunReport(result, { verbose: args.options.has('verbose') }));
      if (files.length > 0)
        this.io.stdout(`\nPictures: ${files.length} SVG files in ${this.path(svg as string)}\n`);
    }
    return result.exitCode;
  }

  trace(args: ParsedArgs): number {
    const format = formatOption(args, 'trace');
    const scenario = this.scenario(args.positionals[0], 'trace');
    const result = this.run(scenario, args);
    const { header, events } = result.trace;
    const text =
      format === 'json'
        ? [header, ...events.map(decorateEvent)].map((e) => `${toJson(e)}\n`).join('')
        : formatTraceText(header, events);
    const out = args.options.get('out');
    if (typeof out === 'string') {
      writeFileSync(this.path(out), text);
      this.io.stderr(`trace: ${events.length} events written to ${this.path(out)}\n`);
    } else this.io.stdout(text);
    if (result.exitCode !== 0) {
      const failed = result.steps.find((s) => s.status === 'failed');
      this.io.stderr(
        `trace: the scenario failed at step ${failed?.number ?? '?'} (${failed?.title ?? ''}): ${failed?.message ?? ''}\n`,
      );
    }
    return result.exitCode;
  }

  /** A JSON-lines trace file. */
  readTrace(file: string, command: string): Trace {
    let text: string;
    try {
      text = readFileSync(this.path(file), 'utf8');
    } catch (e) {
      throw new UsageError(`${command}: cannot read '${file}': ${(e as Error).message}`, command);
    }
    return parseTraceJsonl(text, file);
  }

  replay(args: ParsedArgs): number {
    const format = formatOption(args, 'replay');
    const file = args.positionals[0];
    if (file === undefined)
      throw new UsageError('replay: which trace? (iommufd-sim replay TRACE.jsonl)', 'replay');
    const trace = this.readTrace(file, 'replay');
    const result = replayTrace(trace, file);
    const code = result.differences.length === 0 ? EXIT.OK : EXIT.REPLAY_DIFFERS;
    if (format === 'json') {
      this.io.stdout(
        `${toJson({ trace: file, scenario: trace.header.scenario, ...result, exitCode: code }, 2)}\n`,
      );
    } else if (result.differences.length === 0) {
      this.io.stdout(`replay ${file}: all ${result.compared} answers matched\n`);
    } else {
      const lines = [
        `replay ${file}: ${result.differences.length} of ${result.compared} answers differ`,
        ...result.differences.map(
          (d) =>
            `  ${file}:${d.line}${d.step === undefined ? '' : ` (step ${d.step})`} ${d.call}: ${d.what}`,
        ),
      ];
      this.io.stdout(`${lines.join('\n')}\n`);
    }
    return code;
  }

  explain(args: ParsedArgs): number {
    const format = formatOption(args, 'explain');
    const arg = args.positionals[0];
    let failures: ReturnType<typeof explainFailures>;
    let source: string;
    let code: number = EXIT.OK;
    if (arg?.endsWith('.jsonl')) {
      const trace = this.readTrace(arg, 'explain');
      failures = explainFailures(trace.events);
      source = `the trace ${arg} (scenario ${trace.header.scenario})`;
    } else {
      const scenario = this.scenario(arg, 'explain');
      const result = this.run(scenario, args);
      failures = explainFailures(result.trace.events, result.steps);
      source = `${scenario.name} (${scenario.file})`;
      code = result.exitCode;
    }
    if (format === 'json') this.io.stdout(`${toJson({ source, failures, exitCode: code }, 2)}\n`);
    else this.io.stdout(formatExplanation(failures, source));
    return code;
  }

  svg(args: ParsedArgs): number {
    const scenario = this.scenario(args.positionals[0], 'svg');
    const result = this.run(scenario, args);
    const dir = args.options.get('out');
    const files = this.writeSvgs(result, typeof dir === 'string' ? dir : 'iommufd-sim-svg');
    this.io.stdout(
      files.length === 0
        ? `svg: nothing to draw (add 'snapshot' or 'walk' steps)\n`
        : `${files.join('\n')}\n`,
    );
    return result.exitCode;
  }

  scenarios(args: ParsedArgs): number {
    const format = formatOption(args, 'scenarios');
    const list = shippedScenarioNames().map((name) => {
      const file = shippedScenarioPath(name) as string;
      const sc = loadScenario(readFileSync(file, 'utf8'), file);
      return { name, description: sc.description, steps: countSteps(sc.steps), file };
    });
    if (format === 'json') {
      this.io.stdout(`${toJson(list, 2)}\n`);
      return EXIT.OK;
    }
    const lines = ['Shipped scenarios (iommufd-sim run NAME):'];
    for (const s of list) {
      lines.push(
        '',
        `  ${s.name}${s.name === DEFAULT_SCENARIO ? ' (what iommufd-sim runs without arguments)' : ''}: ${s.steps} steps`,
      );
      lines.push(...wrap(s.description, 96, '    ').map((l, i) => (i === 0 ? `    ${l}` : l)));
      lines.push(`    ${this.display(s.file)}`);
    }
    this.io.stdout(`${lines.join('\n')}\n`);
    return EXIT.OK;
  }

  steps(args: ParsedArgs): number {
    const format = formatOption(args, 'steps');
    this.io.stdout(
      format === 'json'
        ? `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`
        : formatStepReference(),
    );
    return EXIT.OK;
  }

  dispatch(argv: readonly string[]): number {
    const first = argv[0];
    if (first === '--version' || first === '-V') {
      this.io.stdout(`iommufd-sim ${readVersion()} (Linux 6.17 iommufd model)\n`);
      return EXIT.OK;
    }
    if (first === '--help' || first === '-h') {
      this.io.stdout(`${HELP.main}\n`);
      return EXIT.OK;
    }
    const command = first === undefined || first.startsWith('-') ? 'default' : first;
    const rest = command === first ? argv.slice(1) : argv;
    const spec = SPECS[command];
    if (spec === undefined) {
      throw new UsageError(
        `unknown command '${command}' (commands: ${Object.keys(SPECS).join(', ')})`,
      );
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      this.io.stdout(`${HELP[command] ?? HELP.main}\n`);
      return EXIT.OK;
    }
    const args = parseArgs(rest, spec, command);
    switch (command) {
      case 'default':
      case 'run':
        return this.report(command, args);
      case 'trace':
        return this.trace(args);
      case 'replay':
        return this.replay(args);
      case 'explain':
        return this.explain(args);
      case 'svg':
        return this.svg(args);
      case 'scenarios':
        return this.scenarios(args);
      case 'steps':
        return this.steps(args);
      default: {
        const topic = args.positionals[0];
        this.io.stdout(`${(topic === undefined ? undefined : HELP[topic]) ?? HELP.main}\n`);
        return EXIT.OK;
      }
    }
  }
}

/** Steps of a list, those inside groups included and the groups themselves not. */
function countSteps(steps: Scenario['steps']): number {
  let n = 0;
  for (const s of steps) {
    const inner = s.fields.get('steps')?.value;
    n += inner?.t === 'steps' ? countSteps(inner.steps) : 1;
  }
  return n;
}

function readVersion(): string {
  try {
    const manifest = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version?: string;
    };
    return manifest.version ?? '?';
  } catch {
    return '?';
  }
}

/**
 * Run the program with `argv` (the arguments after the program name) and
 * return its exit code: 0 ok, 1 a step failed, 2 bad usage or an invalid
 * file, 3 replay differences, 4 a bug. Never throws.
 */
export function main(argv: readonly string[], io: CliIo): number {
  try {
    return new Cli(io).dispatch(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`iommufd-sim: ${e.message}\n`);
      io.stderr(`Try 'iommufd-sim ${e.command === undefined ? '' : `${e.command} `}--help'.\n`);
      return EXIT.USAGE;
    }
    if (e instanceof ScenarioError) {
      io.stderr(`${e.message}\n`);
      io.stderr(
        `iommufd-sim: the scenario has ${e.problems.length} problem${e.problems.length === 1 ? '' : 's'}; nothing was run ('iommufd-sim steps' lists every step and field)\n`,
      );
      return EXIT.USAGE;
    }
    if (e instanceof TraceFileError) {
      io.stderr(`${e.message}\n`);
      return EXIT.USAGE;
    }
    const err = e as Error;
    io.stderr(`iommufd-sim: internal error: ${err.message}\n`);
    if (process.env.IOMMUFD_SIM_DEBUG === '1') io.stderr(`${err.stack ?? ''}\n`);
    else io.stderr('(set IOMMUFD_SIM_DEBUG=1 for the stack trace, and please report it)\n');
    return EXIT.INTERNAL;
  }
}

/** A {@link CliIo} on the real process: stdout, stderr, the working directory. */
export function processIo(): CliIo {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    stderrIsTTY: process.stderr.isTTY === true,
    cwd: process.cwd(),
  };
}
