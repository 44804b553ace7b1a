// The README's TypeScript example runs as a user would write it, and every
// shell example followed by an output excerpt is run and compared with it.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeReadmeExamples } from '../../../scripts/test-support/readme-examples.js';
import { STEPS } from '../src/scenario/catalog.js';
import { cli, tempDir } from './helpers.js';

const README = new URL('../README.md', import.meta.url);
describeReadmeExamples([README], new URL('./.readme-examples/', import.meta.url), 1);

interface Block {
  readonly lang: string;
  readonly body: string;
  readonly start: number;
  readonly end: number;
}

const text = readFileSync(README, 'utf8');
const blocks: Block[] = [...text.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({
  lang: m[1] ?? '',
  body: m[2] ?? '',
  start: m.index ?? 0,
  end: (m.index ?? 0) + m[0].length,
}));

interface Example {
  readonly commands: { readonly args: string[]; readonly code: number }[];
  readonly excerpt?: string;
}

const examples: Example[] = [];
blocks.forEach((b, i) => {
  if (b.lang !== 'sh') return;
  const commands = b.body
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('iommufd-sim'))
    .map((line) => {
      const [command = '', comment = ''] = line.split('#');
      const code = /exit (\d+)/.exec(comment);
      return {
        args: command.trim().split(/\s+/).slice(1),
        code: code === null ? 0 : Number(code[1]),
      };
    });
  const next = blocks[i + 1];
  const adjacent =
    next !== undefined && next.lang === 'text' && text.slice(b.end, next.start).trim() === '';
  if (commands.length > 0) examples.push({ commands, ...(adjacent ? { excerpt: next.body } : {}) });
});

/** Every excerpt line (but `...` lines) must match an output line, in order; `...` inside a line matches anything. */
function checkExcerpt(output: string, excerpt: string): void {
  const lines = output.split('\n').map((l) => l.trimEnd());
  let at = 0;
  for (const want of excerpt.split('\n').map((l) => l.trimEnd())) {
    if (want === '' || want === '...') continue;
    const re = new RegExp(
      `^${want
        .split('...')
        .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    const found = lines.findIndex((l, i) => i >= at && re.test(l));
    expect(
      found,
      `README excerpt line not in the output (in order):\n${want}\n--- output ---\n${output}`,
    ).toBeGreaterThanOrEqual(0);
    at = found + 1;
  }
}

describe('README shell examples', () => {
  const dir = tempDir();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // Scenario files the README shows are written where the commands run.
  for (const b of blocks) {
    const name = /^# file: (\S+)\n/.exec(b.body)?.[1];
    if (b.lang === 'yaml' && name !== undefined) writeFileSync(join(dir, name), b.body);
  }

  it('there are shell examples with output excerpts', () => {
    expect(examples.filter((e) => e.excerpt !== undefined).length).toBeGreaterThanOrEqual(8);
  });

  it.each(examples.map((e, i) => [i + 1, e] as const))(
    'example %d runs and prints what the README says',
    (_n, e) => {
      let last = { code: 0, stdout: '', stderr: '' };
      for (const c of e.commands) {
        last = cli(c.args, dir);
        expect(last.code, `iommufd-sim ${c.args.join(' ')}\n${last.stderr}`).toBe(c.code);
      }
      if (e.excerpt !== undefined) checkExcerpt(last.stdout + last.stderr, e.excerpt);
    },
  );
});

describe('README scenario reference', () => {
  it('documents every step and every field of every step', () => {
    for (const s of STEPS) {
      const row = text
        .split('\n')
        .find((l) => l.startsWith(`| \`${s.kind}\` |`) && l.includes('Calls:'));
      expect(row, `no table row for step ${s.kind}`).toBeDefined();
      for (const field of Object.keys(s.fields)) {
        expect(row, `step ${s.kind} field ${field}`).toContain(`\`${field}\``);
      }
    }
  });
});
