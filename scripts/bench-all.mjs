// `npm run bench`: every workspace package's benchmarks, one after the other
// (two at once would compete for the same cores and skew both), then one
// report of every figure beside its reference: bench-results/results.json
// and bench-results/results.md (git-ignored); the table is printed too.
//
// Each package's bench writes bench/results.json, a flat object of figure
// name -> number. A reference is a figure measured in the same run by a
// deliberately plain implementation, and the packages name them in three
// ways, which `referencesOf` reads:
//   ref_<figure>                     iommufd-core, hw-models (VT-d has no prefix)
//   <variant>_<figure> -> ref_<figure>   hw-models: smmuv3_, x86_64_, amdv1_
//   ref_<kind>_<figure>              fault-queue: ref_postmessage_mpsc4_workers_mrec_s
//   ref_<kind>_<tail>               fault-queue: ref_array_local_mrec_s for spsc_local_mrec_s
//   <subject>_ref_<kind>_<figure>    uapi-types: iommu_ioas_map_ref_ready_dataview_encode_decode_ns
// calib_* keys say how fast the machine was; *ratio* keys are ratios a
// package computed itself, which the report recomputes. A package may also
// write figures as objects, { model|value, reference?, unit?, note? }.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listWorkspacePackages } from './layering.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * References the naming rules above cannot find: the one-thread figures of
 * fault-queue that are not runs of records still stand beside the array queue.
 */
export const EXTRA_REFERENCES = Object.freeze({
  '@iommufd-sim/fault-queue': {
    spsc_local_per_record_mrec_s: ['ref_array_local_mrec_s'],
    spsc_local_copy_mrec_s: ['ref_array_local_mrec_s'],
  },
});

/** Name tokens that only say what a number is measured in; a match on them alone means nothing. */
const UNIT_TOKENS = new Set(['ns', 'us', 'ms', 's', 'mrec', 'ops', 'per', 'page', 'bytes', 'x']);

const isRatioKey = (key) => /(^|_)(ratio|vs)(_|$)/.test(key);
const isReferenceKey = (key) =>
  !isRatioKey(key) && (key.startsWith('ref_') || key.includes('_ref_'));
const isCalibrationKey = (key) => key.startsWith('calib_');

/** The unit a figure's name ends with, and whether more or less of it is better. */
export function unitOf(key) {
  if (key.endsWith('_ns_per_page')) return { unit: 'ns/page', better: 'lower' };
  if (key.endsWith('_ops_s')) return { unit: 'ops/s', better: 'higher' };
  if (key.endsWith('_mrec_s')) return { unit: 'M records/s', better: 'higher' };
  if (key.endsWith('_ns')) return { unit: 'ns', better: 'lower' };
  if (key.endsWith('_us')) return { unit: 'µs', better: 'lower' };
  if (key.endsWith('_ms')) return { unit: 'ms', better: 'lower' };
  if (/(^|_)bytes(_|$)/.test(key)) return { unit: 'bytes', better: 'lower' };
  return { unit: '', better: 'lower' };
}

/**
 * The ways reference key `ref` may name a model figure: the stems left once
 * `ref` and 0, 1, ... qualifier tokens after it are removed, each with the
 * tokens before `ref` (a subject such as a struct name) the model key must
 * start with.
 */
function stemsOf(ref) {
  const tokens = ref.split('_');
  const at = tokens.indexOf('ref');
  const subject = tokens.slice(0, at).join('_');
  const rest = tokens.slice(at + 1);
  const stems = [];
  for (let drop = 0; drop < rest.length; drop++) {
    const stem = rest.slice(drop);
    if (!stem.some((t) => !UNIT_TOKENS.has(t))) break;
    stems.push({ subject, stem: stem.join('_'), length: stem.length });
  }
  return stems;
}

/** How many tokens of `model`'s name reference `ref` names (0: none). */
function matchLength(model, ref) {
  let best = 0;
  for (const { subject, stem, length } of stemsOf(ref)) {
    const matches =
      subject === ''
        ? model === stem || model.endsWith(`_${stem}`)
        : model === `${subject}_${stem}`;
    if (matches && length > best) best = length;
  }
  return best;
}

/**
 * The reference keys of each model key of one package's flat results. A
 * reference goes to the model figures it names most closely (ties: all of
 * them); a model figure keeps its closest references (ties: all of them).
 */
export function referencesOf(keys, extra = {}) {
  const refs = keys.filter(isReferenceKey);
  const models = keys.filter((k) => !isReferenceKey(k) && !isRatioKey(k) && !isCalibrationKey(k));
  const bestForRef = new Map(
    refs.map((r) => [r, Math.max(0, ...models.map((m) => matchLength(m, r)))]),
  );
  const out = new Map();
  for (const model of models) {
    const scored = refs
      .map((r) => ({ r, n: matchLength(model, r) }))
      .filter(({ r, n }) => n > 0 && n === bestForRef.get(r));
    const top = Math.max(0, ...scored.map((s) => s.n));
    const chosen = scored.filter((s) => s.n === top).map((s) => s.r);
    if (chosen.length === 0) chosen.push(...(extra[model] ?? []).filter((r) => refs.includes(r)));
    out.set(model, chosen);
  }
  return out;
}

const finite = (x) => typeof x === 'number' && Number.isFinite(x);

/**
 * One package's bench results as rows of the report, whatever shape they
 * came in: a flat object of numbers, or objects / an array of figures with
 * their own reference. Returns the rows, the machine calibration figures and
 * what could not be read.
 */
export function normaliseResults(pkg, results, extra = EXTRA_REFERENCES[pkg] ?? {}) {
  const rows = [];
  const machine = {};
  const ratios = {};
  const unreadable = [];
  const entries = Array.isArray(results)
    ? results.map((r, i) => [String(r?.figure ?? r?.name ?? `#${i}`), r])
    : Object.entries(results ?? {});
  const flat = {};
  for (const [key, value] of entries) {
    if (finite(value)) {
      if (isCalibrationKey(key)) machine[key] = value;
      else if (isRatioKey(key)) ratios[key] = value;
      else flat[key] = value;
    } else if (value !== null && typeof value === 'object' && finite(value.model ?? value.value)) {
      const model = value.model ?? value.value;
      const reference = finite(value.reference) ? value.reference : undefined;
      const { unit, better } = unitOf(key);
      rows.push(
        makeRow(
          pkg,
          key,
          model,
          reference,
          typeof value.unit === 'string' ? value.unit : unit,
          better,
          {
            note: typeof value.note === 'string' ? value.note : undefined,
          },
        ),
      );
    } else {
      unreadable.push(key);
    }
  }
  const keys = Object.keys(flat);
  for (const [model, refs] of referencesOf(keys, extra)) {
    const { unit, better } = unitOf(model);
    if (refs.length === 0) {
      rows.push(makeRow(pkg, model, flat[model], undefined, unit, better, {}));
    }
    for (const ref of refs) {
      rows.push(
        makeRow(pkg, model, flat[model], flat[ref], unit, better, { referenceFigure: ref }),
      );
    }
  }
  // A reference no model figure claims is still a measurement: list it alone.
  const claimed = new Set([...referencesOf(keys, extra).values()].flat());
  for (const key of keys) {
    if (isReferenceKey(key) && !claimed.has(key)) {
      const { unit, better } = unitOf(key);
      rows.push(
        makeRow(pkg, key, flat[key], undefined, unit, better, {
          note: 'a reference figure no model figure claims',
        }),
      );
    }
  }
  return { rows, machine, ratios, unreadable };
}

function makeRow(pkg, figure, model, reference, unit, better, { referenceFigure, note }) {
  const ratio = reference !== undefined && reference !== 0 ? model / reference : undefined;
  const notes = [];
  if (referenceFigure !== undefined) notes.push(`reference: ${referenceFigure}`);
  if (note !== undefined) notes.push(note);
  if (reference === undefined && note === undefined) notes.push('no reference measured');
  if (ratio !== undefined) {
    // How many times better the better side is, in the figure's own direction.
    const modelAhead = better === 'lower' ? ratio < 1 : ratio > 1;
    const factor = formatNumber(Math.max(ratio, 1 / ratio));
    notes.push(
      factor === '1'
        ? 'level with the reference'
        : `${modelAhead ? 'model' : 'reference'} ${factor}x better (${better} is better)`,
    );
  }
  return {
    figure,
    package: pkg,
    model,
    reference: reference ?? null,
    referenceFigure: referenceFigure ?? null,
    ratio: ratio ?? null,
    unit,
    better,
    note: notes.join('; '),
  };
}

/** A figure for a table: three significant digits below 100, whole numbers above. */
export function formatNumber(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 100) return String(Math.round(x));
  if (x === 0) return '0';
  return String(Number(x.toPrecision(3)));
}

/**
 * The whole report from each package's results: `inputs` is a list of
 * { package, results } (results as read from bench/results.json, or
 * undefined when the package wrote none) plus anything to keep about the
 * package's run (status, seconds); `about` is kept about the whole run.
 *
 * @param {Array<{ package: string, results: unknown, status?: string, seconds?: number }>} inputs
 * @param {{ generatedAt?: string, node?: string, cpu?: string }} [about]
 */
export function aggregateBench(inputs, about = {}) {
  const packages = [];
  const rows = [];
  for (const input of inputs) {
    const { package: name, results, ...rest } = input;
    if (results === undefined) {
      packages.push({ name, figures: 0, machine: {}, ratios: {}, unreadable: [], ...rest });
      continue;
    }
    const normalised = normaliseResults(name, results);
    rows.push(...normalised.rows);
    packages.push({
      name,
      figures: normalised.rows.length,
      machine: normalised.machine,
      ratios: normalised.ratios,
      unreadable: normalised.unreadable,
      ...rest,
    });
  }
  return { ...about, packages, rows };
}

const shortName = (name) => name.replace(/^@iommufd-sim\//, '');

/** The report as Markdown: a line per package (status, machine speed), then one table. */
export function benchMarkdown(report) {
  const lines = ['# iommufd-sim benchmarks', ''];
  if (report.generatedAt !== undefined) {
    lines.push(
      `Run of ${report.generatedAt}${report.node ? ` on Node ${report.node}` : ''}` +
        `${report.cpu ? `, ${report.cpu}` : ''}. ratio = model / reference, both measured in the same run.`,
      '',
    );
  } else {
    lines.push('ratio = model / reference, both measured in the same run.', '');
  }
  for (const p of report.packages) {
    const calib = Object.entries(p.machine ?? {})
      .map(([k, v]) => `${k} ${formatNumber(v)}`)
      .join(', ');
    const parts = [
      p.status ?? (p.figures > 0 ? 'ok' : 'no results'),
      `${p.figures} figure${p.figures === 1 ? '' : 's'}`,
    ];
    if (p.seconds !== undefined) parts.push(`${Math.round(p.seconds)} s`);
    if (calib !== '') parts.push(`machine: ${calib}`);
    if ((p.unreadable ?? []).length > 0) parts.push(`not read: ${p.unreadable.join(', ')}`);
    lines.push(`- \`${p.name}\`: ${parts.join('; ')}`);
  }
  if (report.packages.some((p) => p.machine?.calib_int_add_ns !== undefined)) {
    lines.push(
      '',
      '`calib_int_add_ns` is what one integer add took while that package ran (about 0.4 ns on an',
      'idle 2.5 GHz core): a busy machine inflates every figure, which is why each stands beside a',
      'reference measured in the same run.',
    );
  }
  lines.push('', '| figure | package | model | reference | ratio | unit | note |');
  lines.push('| --- | --- | ---: | ---: | ---: | --- | --- |');
  for (const r of report.rows) {
    lines.push(
      `| \`${r.figure}\` | ${shortName(r.package)} | ${formatNumber(r.model)} | ${formatNumber(r.reference)} | ` +
        `${formatNumber(r.ratio)} | ${r.unit} | ${r.note} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Parses the command line: `--no-run` (report existing results only), `--out DIR`. */
export function parseBenchArgs(argv, rootDir) {
  const args = { run: true, out: join(rootDir, 'bench-results') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-run') args.run = false;
    else if (arg === '--out' && argv[i + 1] !== undefined) args.out = resolve(argv[++i]);
    else throw new Error(`unknown argument '${arg}' (usage: bench-all.mjs [--no-run] [--out DIR])`);
  }
  return args;
}

function readResults(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function main() {
  const args = parseBenchArgs(process.argv.slice(2), ROOT);
  const benched = listWorkspacePackages(ROOT).filter(
    (p) => p.manifest.scripts?.bench !== undefined,
  );
  const started = Date.now();
  const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };

  if (args.run) {
    console.log('bench: building the packages (turbo, cached)');
    const build = spawnSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], {
      cwd: ROOT,
      stdio: 'inherit',
      env,
    });
    if (build.status !== 0) {
      console.error('bench: the build failed');
      process.exit(build.status ?? 1);
    }
    console.log(`bench: packages built (${Math.round((Date.now() - started) / 1000)} s)`);
  }

  const inputs = [];
  for (const [i, pkg] of benched.entries()) {
    const file = join(pkg.dir, 'bench', 'results.json');
    const tag = `bench [${i + 1}/${benched.length}] ${pkg.name}`;
    if (!args.run) {
      const results = existsSync(file) ? readResults(file) : undefined;
      inputs.push({
        package: pkg.name,
        results,
        status: results === undefined ? 'no results' : 'ok',
      });
      continue;
    }
    console.log(`${tag}: running \`${pkg.manifest.scripts.bench}\``);
    const t0 = Date.now();
    // npm run, not turbo run: turbo's strict env mode would drop BENCH_* settings.
    const run = spawnSync('npm', ['run', '--silent', 'bench', '-w', pkg.name], {
      cwd: ROOT,
      stdio: 'inherit',
      env,
    });
    const seconds = (Date.now() - t0) / 1000;
    const fresh = existsSync(file) && statSync(file).mtimeMs >= t0;
    const results = fresh ? readResults(file) : undefined;
    const status =
      run.status !== 0
        ? `failed (exit ${run.status ?? run.signal})`
        : results === undefined
          ? 'no results written'
          : 'ok';
    inputs.push({ package: pkg.name, results, status, seconds });
    console.log(`${tag}: ${status} in ${Math.round(seconds)} s`);
  }

  const report = aggregateBench(inputs, {
    generatedAt: new Date().toISOString(),
    node: process.versions.node,
    cpu: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}`,
  });
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  const markdown = benchMarkdown(report);
  writeFileSync(join(args.out, 'results.md'), markdown);
  console.log(`\n${markdown}`);
  const where = relative(process.cwd(), args.out) || '.';
  console.log(
    `bench: ${report.rows.length} figures from ${inputs.filter((p) => p.status === 'ok').length} of ` +
      `${benched.length} packages in ${Math.round((Date.now() - started) / 1000)} s; ` +
      `wrote ${where}/results.json and ${where}/results.md`,
  );
  if (inputs.some((p) => p.status !== 'ok')) process.exitCode = 1;
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) main();
