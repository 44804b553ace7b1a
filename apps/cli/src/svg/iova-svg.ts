/**
 * A picture of one IOAS's IOVA space: lanes for the mapped areas, the
 * reserved ranges (with their owner), the allowed ranges, the usable ranges
 * IOAS_IOVA_RANGES reports, and the aperture of each HWPT's domain. The
 * space runs from 0 to 2^64 with a handful of things in it, so the axis is
 * not to scale: every interval between two boundaries gets a width that
 * grows with the logarithm of its size, and every boundary is labelled.
 */
import type { IoasReport } from '@iommufd-sim/iommufd-core';
import type { ContextSnapshot } from '../run/records.js';
import { hex } from '../util/hex.js';
import { formatSize } from '../util/units.js';
import { escapeXml } from './xml.js';

const END = 1n << 64n;
const LEFT = 190;
const AXIS_W = 1000;
const LANE_H = 34;
const TOP = 64;

interface Span {
  readonly start: bigint;
  /** Exclusive. */
  readonly end: bigint;
  readonly label: string;
  readonly fill: string;
}

interface Lane {
  readonly name: string;
  readonly spans: readonly Span[];
}

function lanesOf(ioas: IoasReport, c: ContextSnapshot): Lane[] {
  const lanes: Lane[] = [
    {
      name: 'mapped areas',
      spans: ioas.areas.map((a) => ({
        start: a.iova,
        end: a.last + 1n,
        label: `${formatSize(a.last - a.iova + 1n)}${a.pinned ? ' pinned' : ''}`,
        fill: '#6cbf6c',
      })),
    },
    {
      name: 'reserved',
      spans: ioas.reserved.map((r) => ({
        start: r.start,
        end: r.last + 1n,
        label: r.owner,
        fill: r.owner === 'domain aperture' ? '#c9c9c9' : '#e57373',
      })),
    },
  ];
  if (ioas.allowed.length > 0) {
    lanes.push({
      name: 'allowed',
      spans: ioas.allowed.map((r) => ({
        start: r.start,
        end: r.last + 1n,
        label: 'allowed',
        fill: '#7fa7e0',
      })),
    });
  }
  lanes.push({
    name: 'usable (IOVA_RANGES)',
    spans: ioas.iovaRanges.map((r) => ({
      start: r.start,
      end: r.last + 1n,
      label: formatSize(r.last - r.start + 1n),
      fill: '#bfe6bf',
    })),
  });
  for (const h of ioas.hwpts) {
    const ap = c.apertures.find((a) => a.hwpt === h.id);
    if (ap === undefined) continue;
    lanes.push({
      name: `HWPT ${h.id} (${h.iommu}) aperture`,
      spans: [
        {
          start: ap.start,
          end: ap.last + 1n,
          label: `${h.auto ? 'automatic, ' : ''}pages ${ap.pageSizes.map((p) => formatSize(p)).join('/')}`,
          fill: '#f3d88a',
        },
      ],
    });
  }
  return lanes;
}

function log2(n: bigint): number {
  return n <= 0n ? 0 : n.toString(2).length - 1;
}

/** Render the IOVA map of IOAS `ioasId` in context `c` as an SVG document. */
export function iovaSvg(c: ContextSnapshot, ioasId: number, title: string): string {
  const ioas = c.report.ioas.find((i) => i.id === ioasId);
  if (ioas === undefined) throw new RangeError(`no IOAS ${ioasId} in this context`);
  const lanes = lanesOf(ioas, c);
  const points = new Set<bigint>([0n, END]);
  for (const lane of lanes) {
    for (const s of lane.spans) {
      points.add(s.start);
      points.add(s.end > END ? END : s.end);
    }
  }
  const bounds = [...points].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const weights = bounds.slice(1).map((b, i) => 2 + log2(b - (bounds[i] as bigint)));
  const total = weights.reduce((a, b) => a + b, 0);
  const xs: number[] = [LEFT];
  for (const w of weights) xs.push((xs.at(-1) as number) + (w / total) * AXIS_W);
  const xOf = (v: bigint): number => xs[bounds.indexOf(v > END ? END : v)] ?? LEFT;

  const axisY = TOP + lanes.length * LANE_H + 8;
  // Spans too narrow for their label are listed under the axis.
  const notes: string[] = [];
  for (const lane of lanes) {
    for (const s of lane.spans) {
      if (xOf(s.end) - xOf(s.start) <= s.label.length * 6.6 + 6) {
        notes.push(
          `${lane.name}: ${hex(s.start)}-${hex(s.end - 1n)} (${formatSize(s.end - s.start)}) ${s.label}`,
        );
      }
    }
  }
  const height = axisY + 140 + notes.length * 16;
  const width = LEFT + AXIS_W + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="12" y="42">IOAS ${ioas.id} of ${escapeXml(c.process)} (fd ${c.fd}); the axis is not to scale: each interval between two boundaries grows with the log of its size</text>`,
  ];
  lanes.forEach((lane, i) => {
    const y = TOP + i * LANE_H;
    out.push(
      `<text x="12" y="${y + 20}">${escapeXml(lane.name)}</text>`,
      `<rect x="${LEFT}" y="${y + 4}" width="${AXIS_W}" height="${LANE_H - 8}" fill="#f6f6f6" stroke="#ddd"/>`,
    );
    for (const s of lane.spans) {
      const x0 = xOf(s.start);
      const x1 = Math.max(xOf(s.end), x0 + 2);
      const range = `${hex(s.start)}-${hex(s.end - 1n)}`;
      out.push(
        `<g><title>${escapeXml(`${lane.name}: ${range} (${formatSize(s.end - s.start)}) ${s.label}`)}</title>`,
        `<rect x="${x0.toFixed(1)}" y="${y + 4}" width="${(x1 - x0).toFixed(1)}" height="${LANE_H - 8}" fill="${s.fill}" stroke="#555"/>`,
      );
      if (x1 - x0 > s.label.length * 6.6 + 6) {
        out.push(`<text x="${(x0 + 4).toFixed(1)}" y="${y + 21}">${escapeXml(s.label)}</text>`);
      }
      out.push('</g>');
    }
  });
  out.push(`<line x1="${LEFT}" y1="${axisY}" x2="${LEFT + AXIS_W}" y2="${axisY}" stroke="#333"/>`);
  bounds.forEach((b, i) => {
    const x = xs[i] as number;
    const label = b === END ? '2^64' : hex(b);
    out.push(
      `<line x1="${x.toFixed(1)}" y1="${TOP}" x2="${x.toFixed(1)}" y2="${axisY + 4}" stroke="#999" stroke-dasharray="2 3"/>`,
      `<text x="${x.toFixed(1)}" y="${axisY + 10}" transform="rotate(60 ${x.toFixed(1)} ${axisY + 10})">${label}</text>`,
    );
  });
  notes.forEach((n, i) => {
    out.push(`<text x="12" y="${axisY + 140 + i * 16}">${escapeXml(n)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
