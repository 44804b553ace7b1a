/** The help text of every command. */

/** Exit codes scripts can rely on. */
export const EXIT = {
  /** Everything passed (replay: every answer matched). */
  OK: 0,
  /** A step's expectation failed. */
  STEP_FAILED: 1,
  /** Bad usage, a missing file, an invalid scenario or trace file. */
  USAGE: 2,
  /** replay: some answers differ from the trace. */
  REPLAY_DIFFERS: 3,
  /** A bug: the model or the program threw. */
  INTERNAL: 4,
} as const;

const EXIT_TEXT = `Exit codes:
  0  every step passed (replay: every answer matched)
  1  a step's expectation failed
  2  bad usage, a missing file, an invalid scenario or trace file
  3  replay: some answers differ from the trace
  4  a bug in the model or the program`;

const RUN_OPTIONS = `Options:
  --format text|json  a report for people (default) or one JSON document
  --svg DIR           write SVG pictures (IOVA maps at snapshots, page-table walks) into DIR
  --verbose           every detail of every step
  --keep-going        run the remaining steps after a failure
  --progress          progress on stderr even when it is not a terminal
  --help              this text`;

/** Help per command; `main` is the overview. */
export const HELP: Readonly<Record<string, string>> = {
  main: `iommufd-sim: run iommufd (/dev/iommu, Linux 6.17) call sequences against a
faithful model and see what the kernel would answer, and why.

Usage:
  iommufd-sim [default]           run the default scenario (what a VMM does)
  iommufd-sim run FILE|NAME       run a scenario file (or a shipped scenario by name)
  iommufd-sim trace [FILE|NAME]   every call decoded like strace (--format json: JSON lines)
  iommufd-sim replay TRACE        play a JSON-lines trace on a fresh host, compare every answer
  iommufd-sim explain [FILE|NAME|TRACE]  each failing call: errno and the model's reason
  iommufd-sim svg [FILE|NAME]     draw the IOVA space and page-table walks (--out DIR)
  iommufd-sim scenarios           list the shipped scenarios
  iommufd-sim steps               every scenario step and field (--format json: a JSON Schema)
  iommufd-sim help [COMMAND]      help on a command (or COMMAND --help)

Without FILE, trace, explain and svg use the default scenario.

${EXIT_TEXT}`,
  default: `Usage: iommufd-sim [default] [options]

Run the built-in default scenario: a host with an SMMUv3 and a VT-d, a PRI
NIC, an NVMe drive and a stalling platform accelerator; a VMM binds them,
maps 4 GiB of guest RAM, tracks dirty pages, answers an I/O page fault, builds
a vIOMMU with a nested HWPT when the model has one, and tears down.

${RUN_OPTIONS}

${EXIT_TEXT}`,
  run: `Usage: iommufd-sim run FILE.yaml|NAME [options]

Run a scenario file, or a shipped scenario by name (see 'iommufd-sim
scenarios'). The file is checked first: every problem is reported with its
line and column, and nothing runs (exit 2). Then every step runs in order and
is checked against its 'expect:'; the first failure stops the run (exit 1).
'iommufd-sim steps' lists every step and field.

${RUN_OPTIONS}

${EXIT_TEXT}`,
  trace: `Usage: iommufd-sim trace [FILE.yaml|NAME] [options]

Run a scenario and print every call it made, decoded like strace: struct
fields by name, flags by name, what the kernel wrote back after '=>', errno
names and the model's reason for each failure. With --format json, one JSON
object per line: a header with the host, then every call with its argument
bytes in and out; 'iommufd-sim replay' plays such a file back.

Options:
  --format text|json  strace-like text (default) or JSON lines
  --out FILE          write the trace to FILE instead of stdout
  --progress          progress on stderr even when it is not a terminal
  --help              this text

${EXIT_TEXT}`,
  replay: `Usage: iommufd-sim replay TRACE.jsonl [options]

Build a fresh host from the trace's header, make every recorded call again
with the recorded arguments, and compare each answer (return value, bytes
written back, data read, DMA outcome) with the trace. Exit 3 when any
differs, listing each difference with its line in the trace.

Options:
  --format text|json  a list for people (default) or one JSON document
  --help              this text

${EXIT_TEXT}`,
  explain: `Usage: iommufd-sim explain [FILE.yaml|NAME|TRACE.jsonl] [options]

For each call that failed, the step that made it, the errno and what it
means, and the reason the model recorded; whether the scenario expected the
failure. A .jsonl file is read as a trace (no scenario is run).

Options:
  --format text|json  text (default) or one JSON document
  --progress          progress on stderr even when it is not a terminal
  --help              this text

${EXIT_TEXT}`,
  svg: `Usage: iommufd-sim svg [FILE.yaml|NAME] [--out DIR]

Run a scenario and draw it: the IOVA space of every IOAS at each 'snapshot'
step (mapped areas, reserved and allowed ranges, usable ranges, the aperture
of every HWPT's domain) and every 'walk' step's page-table walk.

Options:
  --out DIR     where to write the .svg files (default ./iommufd-sim-svg)
  --progress    progress on stderr even when it is not a terminal
  --help        this text

${EXIT_TEXT}`,
  scenarios: `Usage: iommufd-sim scenarios [--format text|json]

List the scenarios shipped with the program, with their descriptions and
files. Run one with 'iommufd-sim run NAME'.`,
  steps: `Usage: iommufd-sim steps [--format text|json]

Every step a scenario file may use and every field, with what it means. With
--format json, a JSON Schema of scenario files.`,
  help: `Usage: iommufd-sim help [COMMAND]`,
};
