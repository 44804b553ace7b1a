/**
 * The IOAS object and its ioctls (ioas.c): IOAS_ALLOC, IOVA_RANGES,
 * ALLOW_IOVAS, MAP, MAP_FILE, UNMAP, COPY, CHANGE_PROCESS and the HUGE_PAGES
 * option. Each handler checks in the kernel's order, so the first errno is
 * the kernel's.
 */
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '@iommufd-sim/hw-models';
import {
  EBADF,
  EFAULT,
  EINVAL,
  EMSGSIZE,
  ENOENT,
  EOPNOTSUPP,
  EOVERFLOW,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  type StructName,
  structs,
} from '@iommufd-sim/uapi-types';
import { type ChargeTarget, chargePinned } from './accounting.js';
import { PAGE_SIZE } from './address-space.js';
import type { IommufdContext } from './context.js';
import type { Ucmd } from './dispatch.js';
import type { HwptPagingObject } from './hw-pagetable.js';
import { type Failure, IoPagetable, type PagesSlice, ULONG_MAX } from './io-pagetable.js';
import { IommufdObject } from './objects.js';
import { IoptPages } from './pages.js';
import type { Process } from './process.js';

const PAGE = BigInt(PAGE_SIZE);
const SIZE_MAX = ULONG_MAX;
const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

/** Field offsets of a struct, by name. */
export function offsets<N extends StructName>(name: N): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [path, info] of Object.entries(structs[name].fields)) {
    out[path] = (info as { offset: number }).offset;
  }
  return out;
}

/** An IOAS: an IOVA space and the HWPTs built on it. */
export class IoasObject extends IommufdObject {
  readonly type = 'IOAS' as const;
  /** Its io_pagetable. */
  readonly iopt: IoPagetable;
  /** Paging HWPTs on it, oldest first (auto domains are reused in this order). */
  readonly hwpts: HwptPagingObject[] = [];

  constructor(readonly ctx: IommufdContext) {
    super();
    this.iopt = new IoPagetable(() => ctx.host.current?.limitPages ?? Number.MAX_SAFE_INTEGER);
  }

  destroy(): void {
    this.iopt.unmapAll();
    this.iopt.removeReserved(null);
    if (this.ctx.vfioIoas === this) this.ctx.vfioIoas = null;
  }
}

/** iommufd_get_ioas: the live IOAS `id`, or undefined. */
export function getIoas(ctx: IommufdContext, id: number): IoasObject | undefined {
  return ctx.objects.get(id, 'IOAS') as IoasObject | undefined;
}

function noIoas(ucmd: Ucmd, id: number): number {
  const obj = ucmd.ctx.objects.get(id);
  return ucmd.fail(
    ENOENT,
    obj === undefined ? `there is no object ${id}` : `object ${id} is a ${obj.type}, not an IOAS`,
  );
}

function failWith(ucmd: Ucmd, f: Failure): number {
  return ucmd.fail(f.errno, f.reason);
}

/** conv_iommu_prot: CACHE always, plus what the flags ask. */
function iommuProt(flags: number): number {
  let prot = IOMMU_CACHE;
  if (flags & IOMMU_IOAS_MAP_WRITEABLE) prot |= IOMMU_WRITE;
  if (flags & IOMMU_IOAS_MAP_READABLE) prot |= IOMMU_READ;
  return prot;
}

/** Who pays for pages mapped by `proc` in `ctx` (iopt_alloc_pages + the MM upgrade of iopt_map_common). */
export function chargeTargetFor(ctx: IommufdContext, proc: Process): ChargeTarget {
  let mode: ChargeTarget['mode'] = proc.ipcLock ? 'none' : 'user';
  if (ctx.accountMode === 'mm' && mode === 'user') mode = 'mm';
  return { mode, user: ctx.host.user(proc.uid), mm: proc.mm };
}

// ---- IOMMU_IOAS_ALLOC ----------------------------------------------------------

const ALLOC = offsets('iommu_ioas_alloc');

/** IOMMU_IOAS_ALLOC */
export function ioasAlloc(ucmd: Ucmd): number {
  if (ucmd.u32(ALLOC.flags as number) !== 0) return ucmd.fail(EOPNOTSUPP, 'flags must be 0');
  const ioas = new IoasObject(ucmd.ctx);
  const full = ucmd.ctx.objects.allocate(ioas);
  if (full !== undefined) return ucmd.fail(full.errno, full.reason);
  ucmd.setU32(ALLOC.out_ioas_id as number, ioas.id);
  const rc = ucmd.respond();
  if (rc !== 0) {
    ucmd.ctx.objects.abort(ioas);
    return rc;
  }
  ucmd.ctx.objects.finalize(ioas);
  return 0;
}

// ---- IOMMU_IOAS_IOVA_RANGES ---------------------------------------------------------

const RANGES = offsets('iommu_ioas_iova_ranges');

/** IOMMU_IOAS_IOVA_RANGES */
export function ioasIovaRanges(ucmd: Ucmd): number {
  if (ucmd.u32(RANGES.__reserved as number) !== 0)
    return ucmd.fail(EOPNOTSUPP, '__reserved must be 0');
  const id = ucmd.u32(RANGES.ioas_id as number);
  const ioas = getIoas(ucmd.ctx, id);
  if (ioas === undefined) return noIoas(ucmd, id);
  const max = ucmd.u32(RANGES.num_iovas as number);
  const ptr = ucmd.u64(RANGES.allowed_iovas as number);
  const ranges = ioas.iopt.iovaRanges();
  const elm = new Uint8Array(16);
  const dv = new DataView(elm.buffer);
  for (let i = 0; i < ranges.length && i < max; i++) {
    const r = ranges[i] as { start: bigint; last: bigint };
    dv.setBigUint64(0, r.start, true);
    dv.setBigUint64(8, r.last, true);
    if (!ucmd.proc.copyToUser(ptr + BigInt(i * 16), elm)) {
      return ucmd.fail(
        EFAULT,
        `allowed_iovas[${i}] at 0x${(ptr + BigInt(i * 16)).toString(16)} cannot be written`,
      );
    }
  }
  ucmd.setU32(RANGES.num_iovas as number, ranges.length);
  ucmd.setU64(RANGES.out_iova_alignment as number, BigInt(ioas.iopt.iovaAlignment));
  const rc = ucmd.respond();
  if (rc !== 0) return rc;
  if (ranges.length > max) {
    return ucmd.fail(
      EMSGSIZE,
      `there are ${ranges.length} ranges but num_iovas was ${max}; num_iovas now holds the count`,
    );
  }
  return 0;
}

// ---- IOMMU_IOAS_ALLOW_IOVAS ---------------------------------------------------------

const ALLOW = offsets('iommu_ioas_allow_iovas');

/** IOMMU_IOAS_ALLOW_IOVAS */
export function ioasAllowIovas(ucmd: Ucmd): number {
  if (ucmd.u32(ALLOW.__reserved as number) !== 0)
    return ucmd.fail(EOPNOTSUPP, '__reserved must be 0');
  const id = ucmd.u32(ALLOW.ioas_id as number);
  const ioas = getIoas(ucmd.ctx, id);
  if (ioas === undefined) return noIoas(ucmd, id);
  const num = ucmd.u32(ALLOW.num_iovas as number);
  const ptr = ucmd.u64(ALLOW.allowed_iovas as number);
  const ranges: { start: bigint; last: bigint }[] = [];
  const elm = new Uint8Array(16);
  const dv = new DataView(elm.buffer);
  for (let i = 0; i < num; i++) {
    if (!ucmd.proc.copyFromUser(ptr + BigInt(i * 16), elm)) {
      return ucmd.fail(EFAULT, `allowed_iovas[${i}] cannot be read`);
    }
    const start = dv.getBigUint64(0, true);
    const last = dv.getBigUint64(8, true);
    if (start >= last) {
      return ucmd.fail(
        EINVAL,
        `allowed_iovas[${i}] = [0x${start.toString(16)}, 0x${last.toString(16)}]: start must be below last`,
      );
    }
    if (ranges.some((r) => r.start <= last && start <= r.last)) {
      return ucmd.fail(EINVAL, `allowed_iovas[${i}] overlaps an earlier range`);
    }
    ranges.push({ start, last });
  }
  const bad = ioas.iopt.setAllowed(ranges);
  return bad === undefined ? 0 : failWith(ucmd, bad);
}

// ---- IOMMU_IOAS_MAP / MAP_FILE ----------------------------------------------------------

const MAP = offsets('iommu_ioas_map');

/** iopt_alloc_user_pages: the pages object for a user VA range of `proc`, charged as it maps in `ctx`. */
function userPages(
  ctx: IommufdContext,
  proc: Process,
  uptr: bigint,
  length: bigint,
  writable: boolean,
): IoptPages | Failure {
  // iopt_alloc_user_pages checks the wrap before iopt_alloc_pages checks the length.
  if (uptr + length > ULONG_MAX) {
    return { errno: EOVERFLOW, reason: 'user_va + length wraps past 2^64' };
  }
  if (length > SIZE_MAX - PAGE || length === 0n) {
    return { errno: EINVAL, reason: length === 0n ? 'length is 0' : 'length is too large' };
  }
  const startByte = uptr % PAGE;
  const npages = Number((length + startByte + PAGE - 1n) / PAGE);
  return new IoptPages(
    { kind: 'user', space: proc.space, base: uptr - startByte },
    npages,
    writable,
    chargeTargetFor(ctx, proc),
    ctx.host.backingLookup,
  );
}

/**
 * iopt_map_user_pages: map `length` bytes of `proc`'s memory at `uptr` into
 * `ioas` with IOMMU protection `prot`, at `iova` or, when it is undefined, at
 * an automatic IOVA; returns the IOVA used. IOMMU_IOAS_MAP and the VFIO
 * compatibility VFIO_IOMMU_MAP_DMA both map through it.
 */
export function mapUserPages(
  ctx: IommufdContext,
  proc: Process,
  ioas: IoasObject,
  uptr: bigint,
  length: bigint,
  prot: number,
  iova: bigint | undefined,
): bigint | Failure {
  const pages = userPages(ctx, proc, uptr, length, (prot & IOMMU_WRITE) !== 0);
  if (!(pages instanceof IoptPages)) return pages;
  return ioas.iopt.mapPages([{ pages, startByte: uptr % PAGE, length }], length, iova, prot);
}

/** iopt_map_common: map one pages object, at `iova` when FIXED_IOVA is set. */
function mapOne(
  ioas: IoasObject,
  pages: IoptPages,
  startByte: bigint,
  length: bigint,
  flags: number,
  iova: bigint,
): bigint | Failure {
  return ioas.iopt.mapPages(
    [{ pages, startByte, length }],
    length,
    flags & IOMMU_IOAS_MAP_FIXED_IOVA ? iova : undefined,
    iommuProt(flags),
  );
}

/** IOMMU_IOAS_MAP */
export function ioasMap(ucmd: Ucmd): number {
  const flags = ucmd.u32(MAP.flags as number);
  if ((flags & ~MAP_FLAGS) !== 0 || ucmd.u32(MAP.__reserved as number) !== 0) {
    return ucmd.fail(
      EOPNOTSUPP,
      (flags & ~MAP_FLAGS) !== 0
        ? `unknown flag bits 0x${(flags & ~MAP_FLAGS).toString(16)}`
        : '__reserved must be 0',
    );
  }
  const iova = ucmd.u64(MAP.iova as number);
  const length = ucmd.u64(MAP.length as number);
  if (iova >= ULONG_MAX || length >= ULONG_MAX) {
    return ucmd.fail(EOVERFLOW, 'iova or length is ULONG_MAX or more');
  }
  if ((flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) === 0) {
    return ucmd.fail(EINVAL, 'neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE is set');
  }
  const id = ucmd.u32(MAP.ioas_id as number);
  const ioas = getIoas(ucmd.ctx, id);
  if (ioas === undefined) return noIoas(ucmd, id);
  const uptr = ucmd.u64(MAP.user_va as number);
  const fixed = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  const got = mapUserPages(
    ucmd.ctx,
    ucmd.proc,
    ioas,
    uptr,
    length,
    iommuProt(flags),
    fixed ? iova : undefined,
  );
  if (typeof got !== 'bigint') return failWith(ucmd, got);
  ucmd.setU64(MAP.iova as number, got);
  return ucmd.respond();
}

const MAP_FILE = offsets('iommu_ioas_map_file');

/** IOMMU_IOAS_MAP_FILE */
export function ioasMapFile(ucmd: Ucmd): number {
  const flags = ucmd.u32(MAP_FILE.flags as number);
  if ((flags & ~MAP_FLAGS) !== 0) {
    return ucmd.fail(EOPNOTSUPP, `unknown flag bits 0x${(flags & ~MAP_FLAGS).toString(16)}`);
  }
  const iova = ucmd.u64(MAP_FILE.iova as number);
  const length = ucmd.u64(MAP_FILE.length as number);
  if (iova >= ULONG_MAX || length >= ULONG_MAX) {
    return ucmd.fail(EOVERFLOW, 'iova or length is ULONG_MAX or more');
  }
  if ((flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) === 0) {
    return ucmd.fail(EINVAL, 'neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE is set');
  }
  const id = ucmd.u32(MAP_FILE.ioas_id as number);
  const ioas = getIoas(ucmd.ctx, id);
  if (ioas === undefined) return noIoas(ucmd, id);
  const fd = ucmd.view.getInt32(MAP_FILE.fd as number, true);
  const file = ucmd.proc.fileOf(fd);
  if (file === undefined) return ucmd.fail(EBADF, `fd ${fd} is not open`);
  if (file.kind !== 'memfd') {
    return ucmd.fail(EOPNOTSUPP, `fd ${fd} is a ${file.kind}, not a memfd`);
  }
  const start = ucmd.u64(MAP_FILE.start as number);
  // iopt_alloc_file_pages checks the wrap before iopt_alloc_pages checks the length.
  if (start + length - 1n > ULONG_MAX)
    return ucmd.fail(EOVERFLOW, 'start + length wraps past 2^64');
  if (length > SIZE_MAX - PAGE || length === 0n) {
    return ucmd.fail(EINVAL, length === 0n ? 'length is 0' : 'length is too large');
  }
  const startByte = start % PAGE;
  const base = start - startByte;
  const npages = Number((length + startByte + PAGE - 1n) / PAGE);
  if (base / PAGE + BigInt(npages) > BigInt(file.file.backing.pages)) {
    return ucmd.fail(EINVAL, 'the range runs past the largest size a memfd can have');
  }
  const pages = new IoptPages(
    { kind: 'file', file: file.file, base: Number(base) },
    npages,
    (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0,
    chargeTargetFor(ucmd.ctx, ucmd.proc),
    ucmd.ctx.host.backingLookup,
  );
  const got = mapOne(ioas, pages, startByte, length, flags, iova);
  if (typeof got !== 'bigint') return failWith(ucmd, got);
  ucmd.setU64(MAP_FILE.iova as number, got);
  return ucmd.respond();
}

// ---- IOMMU_IOAS_UNMAP -----------------------------------------------------------------

const UNMAP = offsets('iommu_ioas_unmap');

/** IOMMU_IOAS_UNMAP */
export function ioasUnmap(ucmd: Ucmd): number {
  const id = ucmd.u32(UNMAP.ioas_id as number);
  const ioas = getIoas(ucmd.ctx, id);
  if (ioas === undefined) return noIoas(ucmd, id);
  const iova = ucmd.u64(UNMAP.iova as number);
  const length = ucmd.u64(UNMAP.length as number);
  let result: { bytes: bigint; failure?: Failure };
  if (iova === 0n && length === ULONG_MAX) {
    result = ioas.iopt.unmapAll();
  } else {
    if (iova >= ULONG_MAX || length >= ULONG_MAX) {
      return ucmd.fail(
        EOVERFLOW,
        'iova or length is ULONG_MAX or more (and not the unmap-all case)',
      );
    }
    result = ioas.iopt.unmapIova(iova, length);
  }
  if (result.failure !== undefined) return failWith(ucmd, result.failure);
  ucmd.setU64(UNMAP.length as number, result.bytes);
  return ucmd.respond();
}

// ---- IOMMU_IOAS_COPY -------------------------------------------------------------------

const COPY = offsets('iommu_ioas_copy');

/** IOMMU_IOAS_COPY */
export function ioasCopy(ucmd: Ucmd): number {
  const flags = ucmd.u32(COPY.flags as number);
  if ((flags & ~MAP_FLAGS) !== 0) {
    return ucmd.fail(EOPNOTSUPP, `unknown flag bits 0x${(flags & ~MAP_FLAGS).toString(16)}`);
  }
  const length = ucmd.u64(COPY.length as number);
  const srcIova = ucmd.u64(COPY.src_iova as number);
  const dstIova = ucmd.u64(COPY.dst_iova as number);
  if (length >= ULONG_MAX || srcIova >= ULONG_MAX || dstIova >= ULONG_MAX) {
    return ucmd.fail(EOVERFLOW, 'length, src_iova or dst_iova is ULONG_MAX or more');
  }
  if ((flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) === 0) {
    return ucmd.fail(EINVAL, 'neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE is set');
  }
  const srcId = ucmd.u32(COPY.src_ioas_id as number);
  const src = getIoas(ucmd.ctx, srcId);
  if (src === undefined) return noIoas(ucmd, srcId);
  const slices = src.iopt.getSlices(srcIova, length);
  if (!Array.isArray(slices)) return failWith(ucmd, slices);
  const dstId = ucmd.u32(COPY.dst_ioas_id as number);
  const dst = getIoas(ucmd.ctx, dstId);
  if (dst === undefined) {
    return noIoas(ucmd, dstId);
  }
  const got = dst.iopt.mapPages(
    slices as PagesSlice[],
    length,
    flags & IOMMU_IOAS_MAP_FIXED_IOVA ? dstIova : undefined,
    iommuProt(flags),
  );
  if (typeof got !== 'bigint') return failWith(ucmd, got);
  ucmd.setU64(COPY.dst_iova as number, got);
  return ucmd.respond();
}

// ---- IOMMU_IOAS_CHANGE_PROCESS ---------------------------------------------------------

const CHANGE = offsets('iommu_ioas_change_process');

/** IOMMU_IOAS_CHANGE_PROCESS: move every pages object's charge and source to the caller. */
export function ioasChangeProcess(ucmd: Ucmd): number {
  if (ucmd.u32(CHANGE.__reserved as number) !== 0)
    return ucmd.fail(EOPNOTSUPP, '__reserved must be 0');
  const ioases = ucmd.ctx.objects
    .all()
    .filter((o): o is IoasObject => o.type === 'IOAS' && o.state === 'live');
  const all = new Set<IoptPages>();
  for (const ioas of ioases) {
    for (const area of ioas.iopt.areas()) {
      const pages = area.pages;
      if (pages === null) continue;
      if (pages.source.kind !== 'file') {
        return ucmd.fail(
          EINVAL,
          `IOAS ${ioas.id} maps user memory at [0x${area.iova.toString(16)}, 0x${area.last.toString(16)}]; only memfd maps can change process`,
        );
      }
      all.add(pages);
    }
  }
  const proc = ucmd.proc;
  const user = ucmd.ctx.host.user(proc.uid);
  // VmPin moves with the source in every mode; locked_vm only where the mode charges it.
  const moving = [...all].filter(
    (p) => p.charge.mm !== proc.mm || (p.charge.mode === 'user' && p.charge.user !== user),
  );
  // Charge the caller first; undo everything on failure.
  const charged: ChargeTarget[] = [];
  for (const p of moving) {
    const target: ChargeTarget = { mode: p.charge.mode, user, mm: proc.mm };
    const rc = chargePinned(target, p.npinned, proc.limitPages);
    if (rc !== 0) {
      charged.forEach((t, i) => {
        chargePinned(t, -(moving[i] as IoptPages).npinned, Number.POSITIVE_INFINITY);
      });
      return ucmd.fail(-rc, "the caller's RLIMIT_MEMLOCK cannot take the pinned pages");
    }
    charged.push(target);
  }
  for (const p of moving) {
    chargePinned(p.charge, -p.npinned, Number.POSITIVE_INFINITY);
  }
  for (const p of all) {
    p.charge.user = user;
    p.charge.mm = proc.mm;
  }
  return 0;
}
