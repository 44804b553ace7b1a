/** Every picture a run can draw: an IOVA map per IOAS per snapshot, and each page-table walk. */
import { walkSvg } from '@iommufd-sim/hw-models';
import type { RunResult } from '../run/runner.js';
import { hex } from '../util/hex.js';
import { iovaSvg } from './iova-svg.js';

/** An SVG document and the file name it should get. */
export interface Picture {
  readonly file: string;
  readonly svg: string;
}

function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '');
}

/** The pictures of a run, in step order. */
export function runPictures(result: RunResult): Picture[] {
  const out: Picture[] = [];
  for (const s of result.snapshots) {
    for (const c of s.contexts) {
      for (const ioas of c.report.ioas) {
        out.push({
          file: `step${s.step}-iova-${slug(c.process)}-fd${c.fd}-ioas${ioas.id}.svg`,
          svg: iovaSvg(c, ioas.id, `IOVA space at step ${s.step}: ${s.label}`),
        });
      }
    }
  }
  for (const w of result.walks) {
    out.push({
      file: `step${w.step}-walk-${slug(w.device)}-${hex(w.iova)}.svg`,
      svg: walkSvg(w.steps, {
        title: `${w.device} on ${w.iommu}: ${w.table}`,
        iova: Number(w.iova),
        ...(w.pa === undefined ? {} : { pa: w.pa }),
      }),
    });
  }
  return out;
}
