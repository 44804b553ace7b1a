/**
 * VFIO type1 compatibility (vfio_compat.c): an iommufd file can stand in for
 * a legacy VFIO container. IOMMU_VFIO_IOAS picks the IOAS the container
 * ioctls work on (the "compat IOAS"); the container ioctls themselves
 * (VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU,
 * VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA) arrive on
 * the iommufd fd with numbers below iommufd's table, and everything else
 * there is ENOTTY.
 *
 * In 6.17 only the VFIO group path (VFIO_GROUP_SET_CONTAINER, which this
 * model does not have) creates a compat IOAS by itself; the container ioctls
 * never do, and answer ENODEV until IOMMU_VFIO_IOAS SET names one. Maps and
 * unmaps go through the same io_pagetable code as IOMMU_IOAS_MAP / UNMAP;
 * type1 (v1) additionally disables large pages so an unmap may cut a mapping.
 */
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '@iommufd-sim/hw-models';
import {
  asUserMemory,
  EFAULT,
  EINVAL,
  ENODEV,
  ENOENT,
  ENOTTY,
  EOPNOTSUPP,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  structs,
  type UserMemory,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  vfioContainerIoctls,
} from '@iommufd-sim/uapi-types';
import { PAGE_SIZE } from './address-space.js';
import type { IommufdContext } from './context.js';
import type { Ucmd } from './dispatch.js';
import { type Failure, ULONG_MAX } from './io-pagetable.js';
import { getIoas, type IoasObject, mapUserPages, offsets } from './ioas.js';
import type { Process } from './process.js';

const PAGE = BigInt(PAGE_SIZE);

function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** get_compat_ioas: the compat IOAS while it is live, else undefined (ENODEV). */
function compatIoas(ctx: IommufdContext): IoasObject | undefined {
  const ioas = ctx.vfioIoas;
  return ioas !== null && ioas.state === 'live' ? ioas : undefined;
}

const NO_COMPAT_IOAS =
  'there is no compat IOAS: name one with IOMMU_VFIO_IOAS (op SET) first (only a VFIO group attach creates one by itself, and this model has no VFIO groups)';

// ---- IOMMU_VFIO_IOAS ----------------------------------------------------------------

const VFIO_IOAS = offsets('iommu_vfio_ioas');

/** IOMMU_VFIO_IOAS: GET, SET or CLEAR the IOAS the VFIO container ioctls use. */
export function vfioIoasIoctl(ucmd: Ucmd): number {
  const reserved = ucmd.view.getUint16(VFIO_IOAS.__reserved as number, true);
  if (reserved !== 0) return ucmd.fail(EOPNOTSUPP, '__reserved must be 0');
  const op = ucmd.view.getUint16(VFIO_IOAS.op as number, true);
  const ctx = ucmd.ctx;
  switch (op) {
    case IOMMU_VFIO_IOAS_GET: {
      const ioas = compatIoas(ctx);
      if (ioas === undefined) return ucmd.fail(ENODEV, NO_COMPAT_IOAS);
      ucmd.setU32(VFIO_IOAS.ioas_id as number, ioas.id);
      return ucmd.respond();
    }
    case IOMMU_VFIO_IOAS_SET: {
      const id = ucmd.u32(VFIO_IOAS.ioas_id as number);
      const ioas = getIoas(ctx, id);
      if (ioas === undefined) {
        const obj = ctx.objects.get(id);
        return ucmd.fail(
          ENOENT,
          obj === undefined
            ? `there is no object ${id}`
            : `object ${id} is a ${obj.type}, not an IOAS`,
        );
      }
      ctx.vfioIoas = ioas;
      return 0;
    }
    case IOMMU_VFIO_IOAS_CLEAR:
      ctx.vfioIoas = null;
      return 0;
    default:
      return ucmd.fail(
        EOPNOTSUPP,
        `unknown op ${op} (GET is ${IOMMU_VFIO_IOAS_GET}, SET ${IOMMU_VFIO_IOAS_SET}, CLEAR ${IOMMU_VFIO_IOAS_CLEAR})`,
      );
  }
}

// ---- the container ioctls -------------------------------------------------------------

/** One container ioctl in progress: who calls, with what, and how it fails. */
class Call {
  constructor(
    readonly ctx: IommufdContext,
    readonly proc: Process,
    readonly name: string,
    /** The argument as a pointer into user memory; null for a NULL pointer. */
    readonly user: UserMemory | Uint8Array | null,
  ) {}

  /** Record why the call fails and return -errno. */
  fail(errno: number, reason: string): number {
    this.proc.recordError(this.name, errno, reason);
    return -errno;
  }

  failWith(f: Failure): number {
    return this.fail(f.errno, f.reason);
  }

  /** copy_from_user of the first `length` bytes of the argument, or undefined (EFAULT). */
  read(length: number): Uint8Array | undefined {
    if (this.user === null) return undefined;
    const out = new Uint8Array(length);
    return asUserMemory(this.user).read(0, length, out, 0) ? out : undefined;
  }

  /**
   * The VFIO argsz rule: copy the first `minsz` bytes (EFAULT), then refuse
   * an `argsz` below them (EINVAL, naming `what` ends there). The bytes, or
   * -errno after recording why.
   */
  readArgsz(minsz: number, what: string): DataView | number {
    const head = this.read(minsz);
    if (head === undefined) {
      return this.fail(EFAULT, `the first ${minsz} bytes of the argument cannot be read`);
    }
    const view = new DataView(head.buffer);
    const argsz = view.getUint32(0, true);
    if (argsz < minsz) return this.fail(EINVAL, `argsz ${argsz} is below ${minsz}, ${what}`);
    return view;
  }

  /** copy_to_user of `bytes` at `offset` past the argument; false if any byte cannot be written. */
  write(offset: number, bytes: Uint8Array): boolean {
    return this.user !== null && asUserMemory(this.user).write(offset, bytes);
  }

  /**
   * The argument as the integer it is for VFIO_CHECK_EXTENSION and
   * VFIO_SET_IOMMU: the raw `unsigned long`. A buffer has no integer value
   * (in C it would be a pointer, never a small number): undefined.
   */
  integer(): bigint | undefined {
    if (this.user === null) return 0n;
    if (this.user instanceof Uint8Array) return undefined;
    const address = this.user.address;
    return address === undefined ? undefined : BigInt.asUintN(64, address);
  }

  /** The compat IOAS, or undefined after recording ENODEV. */
  compatIoas(): IoasObject | undefined {
    const ioas = compatIoas(this.ctx);
    if (ioas === undefined) this.fail(ENODEV, NO_COMPAT_IOAS);
    return ioas;
  }
}

const NOT_AN_INTEGER =
  'the argument is the number itself, not a pointer: pass it as a bigint (proc.ioctl(fd, request, 3n)), not as a buffer';

/**
 * iommufd_vfio_ioctl: a request below iommufd's command range on a
 * /dev/iommu fd. `user` is the argument (null for a NULL pointer; for the
 * integer-argument requests its `address` is the integer). Returns what the
 * kernel returns: >= 0, or -errno with the reason recorded.
 */
export function vfioCompatIoctl(
  ctx: IommufdContext,
  proc: Process,
  request: number,
  user: UserMemory | Uint8Array | null,
): number {
  switch (request) {
    case VFIO_GET_API_VERSION:
      return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION:
      return checkExtension(new Call(ctx, proc, 'VFIO_CHECK_EXTENSION', user));
    case VFIO_SET_IOMMU:
      return setIommu(new Call(ctx, proc, 'VFIO_SET_IOMMU', user));
    case VFIO_IOMMU_GET_INFO:
      return getInfo(new Call(ctx, proc, 'VFIO_IOMMU_GET_INFO', user));
    case VFIO_IOMMU_MAP_DMA:
      return mapDma(new Call(ctx, proc, 'VFIO_IOMMU_MAP_DMA', user));
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(new Call(ctx, proc, 'VFIO_IOMMU_UNMAP_DMA', user));
    case VFIO_IOMMU_DIRTY_PAGES:
      proc.recordError(
        'VFIO_IOMMU_DIRTY_PAGES',
        ENOTTY,
        'iommufd does not emulate type1 dirty page logging; use IOMMU_HWPT_SET_DIRTY_TRACKING and IOMMU_HWPT_GET_DIRTY_BITMAP',
      );
      return -ENOTTY;
    default:
      proc.recordError(
        `ioctl ${hex(request)}`,
        ENOTTY,
        'not an iommufd ioctl, and no VFIO container ioctl by this number',
      );
      return -ENOTTY;
  }
}

/** iommufd_vfio_check_extension: 1 if supported, 0 if not; ENODEV only for VFIO_DMA_CC_IOMMU without a compat IOAS. */
function checkExtension(call: Call): number {
  const type = call.integer();
  if (type === undefined) return 0;
  if (type === BigInt(VFIO_TYPE1_IOMMU) || type === BigInt(VFIO_TYPE1v2_IOMMU)) return 1;
  if (type === BigInt(VFIO_UNMAP_ALL)) return 1;
  if (type === BigInt(VFIO_DMA_CC_IOMMU)) {
    // iommufd_vfio_cc_iommu: 1 unless a paging HWPT of the compat IOAS does not
    // enforce cache coherency. No modelled driver offers enforce_cache_coherency
    // (the mock has none; the model keeps no snoop-control state), so any HWPT
    // on the IOAS makes it 0.
    const ioas = call.compatIoas();
    if (ioas === undefined) return -ENODEV;
    return ioas.hwpts.length === 0 ? 1 : 0;
  }
  // VFIO_NOIOMMU_IOMMU is 0 as without CONFIG_VFIO_NOIOMMU; the nesting type,
  // VFIO_UPDATE_VADDR and every other number are not supported.
  return 0;
}

/** iommufd_vfio_set_iommu: type1 or type1v2 on the compat IOAS; type1 turns large pages off. */
function setIommu(call: Call): number {
  const type = call.integer();
  if (type !== BigInt(VFIO_TYPE1_IOMMU) && type !== BigInt(VFIO_TYPE1v2_IOMMU)) {
    return call.fail(
      EINVAL,
      type === undefined
        ? NOT_AN_INTEGER
        : `IOMMU type ${type} is neither VFIO_TYPE1_IOMMU (${VFIO_TYPE1_IOMMU}) nor VFIO_TYPE1v2_IOMMU (${VFIO_TYPE1v2_IOMMU})`,
    );
  }
  const ioas = call.compatIoas();
  if (ioas === undefined) return -ENODEV;
  if (type === BigInt(VFIO_TYPE1_IOMMU)) {
    // Type1 may unmap inside a mapping; huge IOPTEs could not be cut, so none are made.
    const bad = ioas.iopt.disableLarge();
    if (bad !== undefined) return call.failWith(bad);
  }
  return 0;
}

// ---- VFIO_IOMMU_GET_INFO --------------------------------------------------------------

const INFO = offsets('vfio_iommu_type1_info');
const INFO_SIZE = structs.vfio_iommu_type1_info.sizeof;
const INFO_MIN = vfioContainerIoctls.VFIO_IOMMU_GET_INFO.minSize;
const CAP_NEXT = structs.vfio_info_cap_header.fields.next.offset;
const DMA_AVAIL = structs.vfio_iommu_type1_info_dma_avail;
const IOVA_CAP = structs.vfio_iommu_type1_info_cap_iova_range;
const IOVA_RANGE = structs.vfio_iova_range;

/** iommufd_get_pagesizes: the page sizes every domain of the IOAS has, at least PAGE_SIZE-granular. */
function pageSizes(ioas: IoasObject): bigint {
  let bitmap = ULONG_MAX;
  for (const domain of ioas.iopt.domains) {
    let sizes = 0n;
    for (const s of domain.geometry.pageSizes) sizes |= BigInt(s);
    bitmap &= sizes;
  }
  // As vfio_update_pgsize_bitmap: sizes below a CPU page count as PAGE_SIZE.
  if ((bitmap & (PAGE - 1n)) !== 0n) bitmap = (bitmap & ~(PAGE - 1n)) | PAGE;
  // The kernel takes the larger of the bitmap and the IOAS alignment, as numbers.
  const alignment = BigInt(ioas.iopt.iovaAlignment);
  return bitmap > alignment ? bitmap : alignment;
}

/**
 * A capability filler: writes the capability at byte `at` of the argument if
 * it fits in `avail` bytes, and returns its size (or a failure).
 */
type CapFiller = (call: Call, ioas: IoasObject, at: number, avail: number) => number | Failure;

/** iommufd_fill_cap_dma_avail: DMA_AVAIL, version 1, avail U32_MAX (iommufd sets no limit on the number of mappings). */
const fillDmaAvail: CapFiller = (call, _ioas, at, avail) => {
  if (avail >= DMA_AVAIL.sizeof) {
    const cap = DMA_AVAIL.encode({
      header: { id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1 },
      avail: 0xffffffff,
    });
    if (!call.write(at, cap)) {
      return { errno: EFAULT, reason: `the DMA_AVAIL capability at byte ${at} cannot be written` };
    }
  }
  return DMA_AVAIL.sizeof;
};

/**
 * iommufd_fill_cap_iova: IOVA_RANGE, version 1, one range per hole of the
 * reserved IOVA. Each range is written if it fits, the header only if all do.
 */
const fillIovaRange: CapFiller = (call, ioas, at, avail) => {
  const ranges = ioas.iopt.iovaRanges();
  for (let i = 0; i < ranges.length; i++) {
    if (avail < IOVA_CAP.sizeof + IOVA_RANGE.sizeof * (i + 1)) continue;
    const r = ranges[i] as { start: bigint; last: bigint };
    const off = at + IOVA_CAP.sizeof + IOVA_RANGE.sizeof * i;
    if (!call.write(off, IOVA_RANGE.encode({ start: r.start, end: r.last }))) {
      return { errno: EFAULT, reason: `iova_ranges[${i}] at byte ${off} cannot be written` };
    }
  }
  const size = IOVA_CAP.sizeof + IOVA_RANGE.sizeof * ranges.length;
  if (avail >= size) {
    const head = IOVA_CAP.encode({
      header: { id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1 },
      nr_iovas: ranges.length,
    });
    if (!call.write(at, head)) {
      return { errno: EFAULT, reason: `the IOVA_RANGE capability at byte ${at} cannot be written` };
    }
  }
  return size;
};

// The kernel's order: DMA_AVAIL first, then IOVA_RANGE.
const CAP_FILLERS: readonly CapFiller[] = [fillDmaAvail, fillIovaRange];

/**
 * iommufd_vfio_iommu_get_info: the fixed part (PGSIZES and CAPS) and, as far
 * as `argsz` reaches, the capability chain after it. `argsz` comes back as
 * the size the whole chain needs; `cap_offset` is set only when it all fit.
 * Nothing is written past `argsz`.
 */
function getInfo(call: Call): number {
  const view = call.readArgsz(INFO_MIN, 'the end of iova_pgsizes in struct vfio_iommu_type1_info');
  if (typeof view === 'number') return view;
  const argsz = view.getUint32(INFO.argsz as number, true);
  const outLen = Math.min(argsz, INFO_SIZE);
  const ioas = call.compatIoas();
  if (ioas === undefined) return -ENODEV;

  const info = new Uint8Array(INFO_SIZE);
  info.set(new Uint8Array(view.buffer));
  const out = new DataView(info.buffer);
  out.setUint32(INFO.flags as number, VFIO_IOMMU_INFO_PGSIZES, true);
  out.setBigUint64(INFO.iova_pgsizes as number, pageSizes(ioas), true);
  out.setUint32(INFO.cap_offset as number, 0, true);

  let total = INFO_SIZE;
  let lastCap: number | undefined;
  for (const fill of CAP_FILLERS) {
    const got = fill(call, ioas, total, argsz > total ? argsz - total : 0);
    if (typeof got !== 'number') return call.failWith(got);
    const capSize = Math.ceil(got / 8) * 8;
    // Link the previous capability to this one, if the user's buffer reaches here.
    if (lastCap !== undefined && argsz >= total) {
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, total, true);
      if (!call.write(lastCap + CAP_NEXT, next)) {
        return call.fail(
          EFAULT,
          `the next field of the capability at byte ${lastCap} cannot be written`,
        );
      }
    }
    lastCap = total;
    total += capSize;
  }
  if (argsz >= total) out.setUint32(INFO.cap_offset as number, INFO_SIZE, true);
  out.setUint32(INFO.argsz as number, total, true);
  out.setUint32(INFO.flags as number, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, true);
  if (!call.write(0, info.subarray(0, outLen))) {
    return call.fail(EFAULT, `the first ${outLen} bytes of the argument cannot be written`);
  }
  return 0;
}

// ---- VFIO_IOMMU_MAP_DMA / VFIO_IOMMU_UNMAP_DMA -----------------------------------------

const MAP = offsets('vfio_iommu_type1_dma_map');
const MAP_MIN = vfioContainerIoctls.VFIO_IOMMU_MAP_DMA.minSize;
const MAP_FLAGS = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

/**
 * iommufd_vfio_map_dma: map [vaddr, vaddr + size) at exactly `iova` of the
 * compat IOAS, pinned and charged as IOMMU_IOAS_MAP would for this process.
 */
function mapDma(call: Call): number {
  const view = call.readArgsz(MAP_MIN, 'sizeof(struct vfio_iommu_type1_dma_map)');
  if (typeof view === 'number') return view;
  const flags = view.getUint32(MAP.flags as number, true);
  if ((flags & ~MAP_FLAGS) !== 0) {
    return call.fail(
      EINVAL,
      `unsupported flag bits ${hex((flags & ~MAP_FLAGS) >>> 0)} (only READ and WRITE; VFIO_DMA_MAP_FLAG_VADDR is not emulated)`,
    );
  }
  let prot = IOMMU_CACHE;
  if (flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
  if (flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
  const ioas = call.compatIoas();
  if (ioas === undefined) return -ENODEV;
  const got = mapUserPages(
    call.ctx,
    call.proc,
    ioas,
    view.getBigUint64(MAP.vaddr as number, true),
    view.getBigUint64(MAP.size as number, true),
    prot,
    view.getBigUint64(MAP.iova as number, true),
  );
  if (typeof got !== 'bigint') return call.failWith(got);
  return 0;
}

const UNMAP = offsets('vfio_iommu_type1_dma_unmap');
const UNMAP_MIN = vfioContainerIoctls.VFIO_IOMMU_UNMAP_DMA.minSize;

/**
 * iommufd_vfio_unmap_dma: unmap whole mappings in [iova, iova + size), or,
 * with VFIO_DMA_UNMAP_FLAG_ALL, everything. Under type1 (large pages off) the
 * range's ends are cut first, so part of a mapping can go. The struct's first
 * 24 bytes come back with `size` = bytes unmapped, on failure too.
 */
function unmapDma(call: Call): number {
  const view = call.readArgsz(UNMAP_MIN, 'sizeof(struct vfio_iommu_type1_dma_unmap)');
  if (typeof view === 'number') return view;
  const flags = view.getUint32(UNMAP.flags as number, true);
  if ((flags & ~VFIO_DMA_UNMAP_FLAG_ALL) !== 0) {
    return call.fail(
      EINVAL,
      `unsupported flag bits ${hex((flags & ~VFIO_DMA_UNMAP_FLAG_ALL) >>> 0)} (only VFIO_DMA_UNMAP_FLAG_ALL; GET_DIRTY_BITMAP and VADDR are not emulated)`,
    );
  }
  const ioas = call.compatIoas();
  if (ioas === undefined) return -ENODEV;
  const iova = view.getBigUint64(UNMAP.iova as number, true);
  const size = view.getBigUint64(UNMAP.size as number, true);
  let result: { bytes: bigint; failure?: Failure };
  if (flags & VFIO_DMA_UNMAP_FLAG_ALL) {
    if (iova !== 0n || size !== 0n) {
      return call.fail(
        EINVAL,
        `with VFIO_DMA_UNMAP_FLAG_ALL, iova (${hex(iova)}) and size (${hex(size)}) must be 0`,
      );
    }
    result = ioas.iopt.unmapAll();
  } else {
    if (ioas.iopt.disableLargePages) {
      // Cut at the range's last byte and before its first (no cut is needed before IOVA 0).
      const cuts = [BigInt.asUintN(64, iova + size - 1n)];
      if (iova !== 0n) cuts.push(iova - 1n);
      const bad = ioas.iopt.cutIova(cuts);
      if (bad !== undefined) return call.failWith(bad);
    }
    result = ioas.iopt.unmapIova(iova, size);
  }
  view.setBigUint64(UNMAP.size as number, result.bytes, true);
  if (!call.write(0, new Uint8Array(view.buffer))) {
    return call.fail(EFAULT, `the first ${UNMAP_MIN} bytes of the argument cannot be written back`);
  }
  if (result.failure !== undefined) return call.failWith(result.failure);
  return 0;
}
