// `npm run docs`: API docs of every workspace package with TypeDoc, one site
// in docs/api/ (git-ignored). Each package is converted on its own (a
// progress line each, its warnings told apart), then the conversions are
// merged, so that a type of one package links to its page in another.
//
// Warnings are never fatal. A member without a doc comment is counted per
// package and listed in <out>/warnings.txt (all printed with
// --all-warnings); every other warning, such as a public type that is not
// exported, is printed. A package that cannot be converted is an error: the
// site is still written for the others and the exit code is 1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listWorkspacePackages } from './layering.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const UNDOCUMENTED = /does not have any documentation$/;

/**
 * The packages to document: every workspace package with a `src/index.ts`,
 * with the files TypeDoc reads for it.
 */
export function docsPlan(rootDir) {
  return listWorkspacePackages(rootDir)
    .filter((pkg) => existsSync(join(pkg.dir, 'src', 'index.ts')))
    .map((pkg) => ({
      name: pkg.name,
      dir: pkg.dir,
      entry: join(pkg.dir, 'src', 'index.ts'),
      tsconfig: existsSync(join(pkg.dir, 'tsconfig.build.json'))
        ? join(pkg.dir, 'tsconfig.build.json')
        : join(pkg.dir, 'tsconfig.json'),
      readme: existsSync(join(pkg.dir, 'README.md')) ? join(pkg.dir, 'README.md') : undefined,
    }));
}

/** The page of the generated site, relative to its folder, that documents package `name`. */
export function packagePage(name) {
  return `modules/${name.replace(/[^a-z0-9-]/gi, '_')}.html`;
}

/**
 * The TypeDoc options for one package: the shared ones of `typedoc.json`
 * (without its `$schema`), then the package's entry point, tsconfig and README.
 * Source links point into the working tree (file:// URLs), as the site is
 * built locally and there is no canonical remote.
 */
export function packageOptions(rootDir, pkg) {
  const { $schema: _schema, ...shared } = JSON.parse(
    readFileSync(join(rootDir, 'typedoc.json'), 'utf8'),
  );
  return {
    ...shared,
    name: pkg.name,
    entryPoints: [pkg.entry],
    tsconfig: pkg.tsconfig,
    readme: pkg.readme ?? 'none',
    basePath: rootDir,
    displayBasePath: rootDir,
    sourceLinkTemplate: `file://${rootDir}/{path}#L{line}`,
    logLevel: 'Warn',
  };
}

/**
 * Sorts the warnings of one package: members without a doc comment apart
 * from everything else, with the repository path taken out of the messages.
 */
export function classifyMessages(messages, rootDir) {
  const undocumented = [];
  const other = [];
  for (const { level, message } of messages) {
    const text = message.replaceAll(`${rootDir}/`, '');
    if (level === 'warning' && UNDOCUMENTED.test(text)) undocumented.push(text);
    else other.push({ level, message: text });
  }
  return { undocumented, other };
}

/** Parses the command line: `--out DIR` (default docs/api), `--no-build`, `--all-warnings`. */
export function parseDocsArgs(argv, rootDir) {
  const args = { out: join(rootDir, 'docs', 'api'), build: true, allWarnings: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-build') args.build = false;
    else if (arg === '--all-warnings') args.allWarnings = true;
    else if (arg === '--out' && argv[i + 1] !== undefined) args.out = resolve(argv[++i]);
    else {
      throw new Error(
        `unknown argument '${arg}' (usage: docs.mjs [--out DIR] [--no-build] [--all-warnings])`,
      );
    }
  }
  return args;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

function build() {
  // TypeDoc reads a package's dependencies through their built .d.ts files
  // (and their declaration maps, which lead it back to the sources).
  console.log('docs: building the packages (turbo, cached)');
  const started = Date.now();
  const run = spawnSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
  });
  if (run.status !== 0) {
    process.stdout.write(run.stdout ?? '');
    process.stderr.write(run.stderr ?? '');
    console.error('docs: the build failed (output above)');
    process.exit(run.status ?? 1);
  }
  console.log(`docs: packages built (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

async function main() {
  const started = Date.now();
  const args = parseDocsArgs(process.argv.slice(2), ROOT);
  const seconds = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  if (args.build) build();

  const { Application, Logger, LogLevel, TSConfigReader } = await import('typedoc');

  /** Keeps TypeDoc's warnings and errors instead of printing them as they come. */
  class CollectingLogger extends Logger {
    messages = [];
    log(message, level) {
      super.log(message, level);
      if (level >= LogLevel.Warn) {
        this.messages.push({ level: level === LogLevel.Error ? 'error' : 'warning', message });
      }
    }
  }
  const printOther = (other) => {
    for (const { level, message } of other) console.log(`    ${level}: ${message}`);
  };

  const plan = docsPlan(ROOT);
  const work = mkdtempSync(join(tmpdir(), 'iommufd-sim-docs-'));
  const undocumentedAll = [];
  let otherWarnings = 0;
  const failed = [];
  try {
    const converted = [];
    for (const [i, pkg] of plan.entries()) {
      const app = await Application.bootstrapWithPlugins(packageOptions(ROOT, pkg), [
        new TSConfigReader(),
      ]);
      const logger = new CollectingLogger();
      app.logger = logger;
      const project = await app.convert();
      if (project !== undefined) {
        app.validate(project);
        const file = join(work, `${basename(pkg.dir)}.json`);
        writeFileSync(file, JSON.stringify(app.serializer.projectToObject(project, ROOT)));
        converted.push(file);
      } else {
        failed.push(pkg.name);
      }
      const { undocumented, other } = classifyMessages(logger.messages, ROOT);
      undocumentedAll.push(...undocumented.map((m) => `${pkg.name}: ${m}`));
      otherWarnings += other.filter((m) => m.level === 'warning').length;
      const counts = [
        undocumented.length > 0
          ? `${plural(undocumented.length, 'member')} without a doc comment`
          : '',
        other.length > 0 ? plural(other.length, 'other warning') : '',
      ].filter((s) => s !== '');
      console.log(
        `docs [${i + 1}/${plan.length}] ${pkg.name}: ${project === undefined ? 'FAILED' : 'converted'}` +
          `${counts.length > 0 ? `, ${counts.join(', ')}` : ''} (${seconds()})`,
      );
      if (args.allWarnings) for (const m of undocumented) console.log(`    warning: ${m}`);
      printOther(other);
    }
    if (converted.length === 0) {
      console.error('docs: no package could be converted; no site written');
      process.exitCode = 1;
      return;
    }

    const app = await Application.bootstrapWithPlugins(
      {
        ...packageOptions(ROOT, { name: 'iommufd-sim', entry: '', tsconfig: '' }),
        name: 'iommufd-sim',
        entryPointStrategy: 'merge',
        entryPoints: converted,
        readme: join(ROOT, 'README.md'),
        out: args.out,
      },
      [],
    );
    const logger = new CollectingLogger();
    app.logger = logger;
    const project = await app.convert();
    const { other } = classifyMessages(logger.messages, ROOT);
    if (project === undefined) {
      printOther(other);
      console.error('docs: merging the packages failed; no site written');
      process.exitCode = 1;
      return;
    }
    await app.generateDocs(project, args.out);
    printOther(other);
    otherWarnings += other.filter((m) => m.level === 'warning').length;
    writeFileSync(
      join(args.out, 'warnings.txt'),
      `Members without a doc comment, by package (npm run docs)\n\n${undocumentedAll.join('\n')}\n`,
    );
    const where = relative(process.cwd(), args.out) || '.';
    console.log(`docs: site written to ${where}/index.html (${seconds()})`);
    console.log(
      `docs: ${plural(converted.length, 'package')}; warnings, not fatal: ` +
        `${plural(undocumentedAll.length, 'member')} without a doc comment (listed in ${where}/warnings.txt, ` +
        `or run with --all-warnings), ${plural(otherWarnings, 'other warning')}`,
    );
    if (failed.length > 0) {
      console.error(`docs: could not convert ${failed.join(', ')} (errors above)`);
      process.exitCode = 1;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) await main();
