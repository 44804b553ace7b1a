/**
 * A page-table walk as a picture: one box per table the walk read, the entry
 * it used highlighted with its index and raw value, and an arrow from each
 * entry to the table (or page) it points at. Plain SVG text, no dependencies,
 * so a report can embed it or a browser can open it.
 */
import type { WalkStep } from '../pagetable/format.js';

/** What to print around the walk. */
export interface WalkSvgOptions {
  /** A heading (escaped). Default: "page-table walk". */
  readonly title?: string;
  /** The input address walked, printed under the title. */
  readonly iova?: number;
  /** The output address, printed in the final box when the walk reached a leaf. */
  readonly pa?: number;
}

const BOX_W = 250;
const BOX_H = 92;
const GAP = 46;
const MARGIN = 16;
const HEAD = 52;

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sizeName(bytes: number): string {
  if (bytes >= 2 ** 30) return `${bytes / 2 ** 30} GiB`;
  if (bytes >= 2 ** 20) return `${bytes / 2 ** 20} MiB`;
  return `${bytes / 1024} KiB`;
}

/** Render `steps` (from {@link PageTable.walk}) as an SVG document. */
export function walkSvg(steps: readonly WalkStep[], options: WalkSvgOptions = {}): string {
  const boxes = steps.length + 1; // the tables, then the page or the fault
  const width = MARGIN * 2 + boxes * BOX_W + (boxes - 1) * GAP;
  const height = HEAD + BOX_H + MARGIN * 2;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="12">`,
    '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#444"/></marker></defs>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${MARGIN}" y="22" font-size="15" font-weight="bold">${escapeXml(options.title ?? 'page-table walk')}</text>`,
  ];
  if (options.iova !== undefined) {
    out.push(`<text x="${MARGIN}" y="40">iova ${hex(options.iova)}</text>`);
  }
  const top = HEAD + MARGIN;
  steps.forEach((step, i) => {
    const x = MARGIN + i * (BOX_W + GAP);
    const fill = step.kind === 'invalid' ? '#fde2e2' : step.kind === 'leaf' ? '#e2f5e2' : '#e8eefc';
    out.push(
      `<rect x="${x}" y="${top}" width="${BOX_W}" height="${BOX_H}" rx="6" fill="${fill}" stroke="#335"/>`,
      `<text x="${x + 8}" y="${top + 18}" font-weight="bold">level ${step.level} table @ ${hex(step.tableAddress)}</text>`,
      `<text x="${x + 8}" y="${top + 38}">[${step.index}] at ${hex(step.entryAddress)}</text>`,
      `<text x="${x + 8}" y="${top + 58}">raw ${hex(step.raw)}</text>`,
      `<text x="${x + 8}" y="${top + 78}">${step.kind}${step.pageSize === undefined ? '' : ` (${sizeName(step.pageSize)})`}</text>`,
    );
    const ax = x + BOX_W;
    out.push(
      `<line x1="${ax}" y1="${top + BOX_H / 2}" x2="${ax + GAP - 4}" y2="${top + BOX_H / 2}" stroke="#444" marker-end="url(#arrow)"/>`,
    );
  });
  const last = steps.at(-1);
  const x = MARGIN + steps.length * (BOX_W + GAP);
  const reached = last?.kind === 'leaf';
  out.push(
    `<rect x="${x}" y="${top}" width="${BOX_W}" height="${BOX_H}" rx="6" fill="${reached ? '#fff7d6' : '#fde2e2'}" stroke="#335" stroke-dasharray="${reached ? '0' : '4 3'}"/>`,
    `<text x="${x + 8}" y="${top + 18}" font-weight="bold">${reached ? 'page' : 'fault'}</text>`,
  );
  if (reached && options.pa !== undefined) {
    out.push(`<text x="${x + 8}" y="${top + 38}">pa ${hex(options.pa)}</text>`);
  } else if (!reached) {
    out.push(
      `<text x="${x + 8}" y="${top + 38}">${last === undefined ? 'outside the table' : 'entry not present'}</text>`,
    );
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
