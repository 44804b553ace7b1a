/** Command-line arguments: positionals and `--name value` / `--name=value` / `--flag` options. */

/** A command line the program cannot use (exit code 2). */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose usage to point at. */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The options a command takes: true for one that takes a value, false for a flag. */
export type OptionSpec = Readonly<Record<string, boolean>>;

/** What was on the command line. */
export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly options: ReadonlyMap<string, string | true>;
}

/** Parse `argv` (after the command name) against `spec`. */
export function parseArgs(argv: readonly string[], spec: OptionSpec, command: string): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = (eq < 0 ? arg : arg.slice(0, eq)).replace(/^--?/, '');
    const takesValue = spec[name];
    if (takesValue === undefined) {
      const known = Object.keys(spec).map((o) => `--${o}`);
      throw new UsageError(
        `${command}: unknown option '${arg}'${known.length > 0 ? ` (options: ${known.join(', ')})` : ''}`,
        command,
      );
    }
    if (!takesValue) {
      if (eq >= 0) throw new UsageError(`${command}: --${name} takes no value`, command);
      options.set(name, true);
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') {
      throw new UsageError(`${command}: --${name} needs a value`, command);
    }
    options.set(name, value);
  }
  return { positionals, options };
}

/** The value of `--format`: text (default) or json. */
export function formatOption(args: ParsedArgs, command: string): 'text' | 'json' {
  const f = args.options.get('format');
  if (f === undefined) return 'text';
  if (f === 'text' || f === 'json') return f;
  throw new UsageError(`${command}: --format is text or json, not '${String(f)}'`, command);
}
