/**
 * ioctl fuzz test: thousands of random requests (every iommufd number, the
 * viommu ones included, IOMMU_TEST_CMD with every op, VFIO numbers, unused
 * slots, random numbers) with random sizes, bytes, small ids, and arguments
 * given as bytes or as process addresses (mapped, unmapped, straddling a
 * guard page, NULL), on a selftest host with a mock domain, maps, a bound
 * VFIO device, a pinning access, a PASID-capable mock device with a PASID
 * attached, a NEST_PARENT HWPT with a nested HWPT, and a dirty-tracking HWPT;
 * plausible calls aim at each of them (HWPT_ALLOC, GET_HW_INFO, dirty
 * tracking, invalidation, the PASID and IOPF test ops). Nothing may throw, the
 * model may count no internal error, every result must be >= 0 or a known
 * -errno, and once every fd is closed no page may stay pinned.
 */
import {
  errnoName,
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_TEST_CMD,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_DIRTY,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  ioctlByRequest,
  ioctls,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_DEVICE_PASID,
  type StructName,
  structs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Host, type Process } from '../src/index.js';
import { FIXED, ioasAlloc, map, mockDomain, RW } from './helpers.js';
import { MAX, prng } from './helpers-d.js';

const PAGE = 4096n;
const SEEDS = (process.env.FUZZ_SEEDS ?? '1,2,3,4').split(',').map(Number);
const CALLS = Number(process.env.FUZZ_CALLS ?? 2500);

/** The member of iommu_test_cmd's union each op reads. */
const TEST_OP_MEMBER: Record<number, string> = {
  1: 'add_reserved',
  2: 'mock_domain',
  3: 'check_map',
  4: 'check_refs',
  5: 'create_access',
  6: 'destroy_access_pages',
  7: 'access_pages',
  8: 'access_rw',
  9: 'memory_limit',
  10: 'mock_domain_replace',
  11: 'access_replace_ioas',
  12: 'mock_domain_flags',
  13: 'dirty',
  14: 'check_iotlb',
  15: 'trigger_iopf',
  16: 'check_dev_cache',
  17: 'trigger_vevent',
  18: 'pasid_attach',
  19: 'pasid_replace',
  20: 'pasid_detach',
  21: 'pasid_check',
};

interface World {
  readonly host: Host;
  readonly proc: Process;
  /** Source memory of the maps (64 pages, then a guard page). */
  readonly buf: bigint;
  /** Where argument structs and their arrays are written (2 pages). */
  readonly scratch: bigint;
  /** A 1 MiB memfd for MAP_FILE. */
  readonly memfd: number;
}

/** A selftest host with a VFIO device on the mock IOMMU, a map source buffer and a scratch buffer. */
function buildWorld(): World {
  const host = createHost({ selftest: true, devices: [{ name: '0000:00:02.0', iommu: 'mock0' }] });
  const proc = host.createProcess();
  const buf = proc.mmap(64n * PAGE);
  const scratch = proc.mmap(2n * PAGE);
  const memfd = proc.memfdCreate('fuzz', 1 << 20);
  return { host, proc, buf, scratch, memfd };
}

/**
 * Open /dev/iommu and give it state worth fuzzing: IOAS A with a mock domain
 * and four maps, IOAS B with the VFIO device bound and attached and a map,
 * and an access on A pinning two pages.
 */
function populate(world: World): void {
  const { host, proc, buf } = world;
  const fd = proc.open('/dev/iommu');
  const a = ioasAlloc(proc, fd);
  const b = ioasAlloc(proc, fd);
  expect(mockDomain(proc, fd, a).rc).toBe(0);
  for (let i = 0n; i < 4n; i++) expect(map(proc, fd, a, buf + i * 8n * PAGE, 8n * PAGE).rc).toBe(0);
  expect(map(proc, fd, b, buf, 16n * PAGE, 16n << 20n).rc).toBe(0);
  // The device may still be bound to an earlier context that something keeps alive.
  const vfio = proc.open('/dev/vfio/devices/vfio0');
  const bind = structs.vfio_device_bind_iommufd.encode({ argsz: 24, iommufd: fd });
  if (proc.ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, bind) === 0) {
    const attach = structs.vfio_device_attach_iommufd_pt.encode({ argsz: 16, pt_id: b });
    expect(proc.ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach)).toBe(0);
  }
  const create = structs.iommu_test_cmd.encode({
    size: 72,
    op: IOMMU_TEST_OP_CREATE_ACCESS,
    id: a,
    create_access: { flags: MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES },
  });
  expect(proc.ioctl(fd, IOMMU_TEST_CMD, create)).toBe(0);
  const accessFd = structs.iommu_test_cmd.decode(create).create_access.out_access_fd;
  const iova = proc.inspect(fd)?.ioas.find((x) => x.id === a)?.areas[0]?.iova ?? 0n;
  const pin = structs.iommu_test_cmd.encode({
    size: 72,
    op: IOMMU_TEST_OP_ACCESS_PAGES,
    id: accessFd,
    access_pages: { iova, length: 2n * PAGE },
  });
  expect(proc.ioctl(accessFd, IOMMU_TEST_CMD, pin)).toBe(-25); // an access fd takes no ioctls
  expect(proc.ioctl(fd, IOMMU_TEST_CMD, pin)).toBe(0);
  // Part 2 state: a PASID-capable mock device, a NEST_PARENT HWPT with a nested HWPT on it,
  // a dirty-tracking HWPT with tracking on, and a PASID attached to a PASID-compatible HWPT.
  const pasidDev = structs.iommu_test_cmd.encode({
    size: 72,
    op: IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
    id: a,
    mock_domain_flags: { dev_flags: MOCK_FLAGS_DEVICE_PASID },
  });
  expect(proc.ioctl(fd, IOMMU_TEST_CMD, pasidDev)).toBe(0);
  const { out_stdev_id: stdev, out_idev_id: idev } =
    structs.iommu_test_cmd.decode(pasidDev).mock_domain;
  const hwptAlloc = (flags: number, ptId: number, data?: Uint8Array): number => {
    let uptr = 0n;
    if (data !== undefined) {
      uptr = world.scratch + 6000n;
      proc.writeMemory(uptr, data);
    }
    const arg = structs.iommu_hwpt_alloc.encode({
      size: 48,
      flags,
      dev_id: idev,
      pt_id: ptId,
      data_type: data === undefined ? 0 : IOMMU_HWPT_DATA_SELFTEST,
      data_len: data?.length ?? 0,
      data_uptr: uptr,
    });
    expect(proc.ioctl(fd, IOMMU_HWPT_ALLOC, arg), JSON.stringify(proc.lastError())).toBe(0);
    return structs.iommu_hwpt_alloc.decode(arg).out_hwpt_id;
  };
  const parent = hwptAlloc(IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID, a);
  hwptAlloc(
    IOMMU_HWPT_ALLOC_PASID,
    parent,
    structs.iommu_hwpt_selftest.encode({ iotlb: IOMMU_TEST_IOTLB_DEFAULT }),
  );
  const dirty = hwptAlloc(IOMMU_HWPT_ALLOC_DIRTY_TRACKING, a);
  const enable = structs.iommu_hwpt_set_dirty_tracking.encode({
    size: 16,
    flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
    hwpt_id: dirty,
  });
  expect(proc.ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, enable)).toBe(0);
  const rid = structs.iommu_test_cmd.encode({
    size: 72,
    op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
    id: stdev,
    mock_domain_replace: { pt_id: parent },
  });
  expect(proc.ioctl(fd, IOMMU_TEST_CMD, rid)).toBe(0);
  const pasid = structs.iommu_test_cmd.encode({
    size: 72,
    op: IOMMU_TEST_OP_PASID_ATTACH,
    id: stdev,
    pasid_attach: { pasid: 7, pt_id: parent },
  });
  expect(proc.ioctl(fd, IOMMU_TEST_CMD, pasid)).toBe(0);
  expect(host.pinnedPages()).toBeGreaterThan(0);
  expect(host.internalErrors).toBe(0);
}

/** Random values shaped by a field's name. */
class Gen {
  constructor(
    readonly rnd: () => number,
    readonly world: World,
  ) {}

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  chance(p: number): boolean {
    return this.rnd() < p;
  }

  u64(): bigint {
    return (BigInt(this.int(2 ** 32)) << 32n) | BigInt(this.int(2 ** 32));
  }

  /** An address or a length: mapped memory, page multiples, mock aperture, edges, or anything. */
  addr(): bigint {
    const { buf, scratch } = this.world;
    switch (this.int(9)) {
      case 0:
        return buf + BigInt(this.int(80)) * 2048n;
      case 1:
        return scratch + BigInt(this.int(8192));
      case 2:
        return BigInt(this.int(40)) * 2048n;
      case 3:
        return (16n << 20n) + BigInt(this.int(200)) * 2048n;
      case 4:
        return this.pick([
          0n,
          1n,
          PAGE,
          MAX,
          MAX - 1n,
          MAX - 4095n,
          1n << 63n,
          1n << 31n,
          2n << 30n,
        ]);
      case 5:
        return BigInt(this.int(1 << 20));
      default:
        return this.chance(0.5) ? BigInt(this.int(64)) * PAGE : this.u64();
    }
  }

  /** A value for field `name` of `bits` bits. */
  value(name: string, bits: number, sizeof: number, minSize: number): bigint {
    const mask = (1n << BigInt(bits)) - 1n;
    let v: bigint;
    if (name === 'size' || name === 'argsz') {
      v = BigInt(
        this.chance(0.8)
          ? sizeof
          : this.pick([minSize, minSize - 1, sizeof + 8, 0, this.int(200), 4096]),
      );
    } else if (name === 'id' || name.endsWith('_id') || name.endsWith('_devid')) {
      // Small ids are likely live objects (and fds, for the access ops).
      v = this.chance(0.5)
        ? BigInt(1 + this.int(2))
        : this.chance(0.8)
          ? BigInt(1 + this.int(8))
          : this.chance(0.5)
            ? 0n
            : this.u64();
    } else if (name.startsWith('__reserved') || name === 'last') {
      v = this.chance(0.95) ? 0n : this.u64();
    } else if (name === 'fd' || name === 'iommufd') {
      v = this.chance(0.9) ? BigInt(this.int(10)) : mask;
    } else if (/flags|op$|type|mode|perm/.test(name)) {
      v = this.chance(0.85)
        ? BigInt(this.int(8))
        : this.chance(0.5)
          ? 1n << BigInt(this.int(bits))
          : this.u64();
    } else if (name.includes('length') && this.chance(0.6)) {
      v = BigInt(1 + this.int(16)) * 2048n;
    } else if (name.includes('iova') && bits === 64 && this.chance(0.5)) {
      v = (16n << 20n) + BigInt(this.int(64)) * 2048n;
    } else if (/uptr|user_va/.test(name) && this.chance(0.6)) {
      v = this.world.buf + BigInt(this.int(128)) * 2048n;
    } else if (bits === 64) {
      v = this.addr();
    } else {
      v = this.chance(0.7) ? BigInt(this.int(20)) : this.u64();
    }
    return v & mask;
  }

  /** The bytes of struct `name` with every scalar field filled (only `member`'s when given: a union). */
  struct(name: StructName, minSize: number, member?: string): Uint8Array {
    const s = structs[name];
    const bytes = new Uint8Array(s.sizeof);
    const view = new DataView(bytes.buffer);
    for (const [path, info] of Object.entries(s.fields) as [
      string,
      { offset: number; size: number; type: string },
    ][]) {
      if (info.type === 'struct') continue;
      const top = path.split('.')[0] as string;
      if (member !== undefined && path.includes('.') && top !== member) continue;
      const leaf = path.slice(path.lastIndexOf('.') + 1);
      if (info.size === 8 || info.size === 4 || info.size === 2 || info.size === 1) {
        const v = this.value(leaf, info.size * 8, s.sizeof, minSize);
        if (info.size === 8) view.setBigUint64(info.offset, v, true);
        else if (info.size === 4) view.setUint32(info.offset, Number(v), true);
        else if (info.size === 2) view.setUint16(info.offset, Number(v), true);
        else view.setUint8(info.offset, Number(v));
      } else {
        for (let i = 0; i < info.size; i++) bytes[info.offset + i] = this.int(256);
      }
    }
    return bytes;
  }

  /** The argument bytes for `request`. */
  payload(request: number): Uint8Array {
    const info = ioctlByRequest(request);
    if (info === undefined || this.chance(0.08)) {
      const raw = new Uint8Array(this.int(120));
      for (let i = 0; i < raw.length; i++) raw[i] = this.chance(0.6) ? 0 : this.int(256);
      if (raw.length >= 4 && this.chance(0.7))
        new DataView(raw.buffer).setUint32(0, raw.length, true);
      return raw;
    }
    let bytes: Uint8Array;
    if (request === IOMMU_TEST_CMD) {
      const op = this.chance(0.9) ? 1 + this.int(21) : this.int(40);
      bytes = this.struct(info.struct, info.minSize, TEST_OP_MEMBER[op]);
      new DataView(bytes.buffer).setUint32(4, op, true);
    } else {
      bytes = this.struct(info.struct, info.minSize);
    }
    // Sometimes shorter or longer than the struct, with a random tail.
    if (this.chance(0.1)) {
      const len = Math.max(0, bytes.length + this.int(24) - 12);
      const out = new Uint8Array(len);
      out.set(bytes.subarray(0, Math.min(len, bytes.length)));
      for (let i = bytes.length; i < len; i++) out[i] = this.chance(0.5) ? 0 : this.int(256);
      return out;
    }
    return bytes;
  }

  /**
   * A plausible call: live ids, IOVAs of existing areas, the access fd, the
   * memfd; then, half the time, one field replaced by a random value.
   */
  plausible(): { request: number; bytes: Uint8Array } {
    const { proc, buf, scratch, memfd } = this.world;
    const files = proc.openFiles();
    const fd = files.find((f) => f.kind === 'iommufd')?.fd ?? 3;
    const accessFd = files.find((f) => f.kind === 'access')?.fd ?? 5;
    const report = proc.inspect(fd);
    const ioases = report?.ioas ?? [];
    const ioas = ioases.length > 0 ? this.pick(ioases) : undefined;
    const ioasId = ioas?.id ?? 1;
    const otherId = ioases.length > 0 ? this.pick(ioases).id : 2;
    const area = ioas !== undefined && ioas.areas.length > 0 ? this.pick(ioas.areas) : undefined;
    const objects = report?.objects ?? [];
    const anyId = objects.length > 0 ? this.pick(objects).id : 1;
    const stdev = objects.find((o) => o.type === 'SELFTEST')?.id ?? 3;
    const pasidStdev = objects.filter((o) => o.type === 'SELFTEST')[1]?.id ?? stdev;
    const pages = BigInt(1 + this.int(8));
    const iova = area?.iova ?? 16n << 20n;
    const len = area !== undefined ? area.last - area.iova + 1n : pages * PAGE;
    const small = len < 16n * PAGE ? len : 16n * PAGE;
    const fresh = (16n << 20n) + BigInt(this.int(4096)) * PAGE;
    const t = (v: Parameters<typeof structs.iommu_test_cmd.encode>[0]) => ({
      request: IOMMU_TEST_CMD,
      bytes: structs.iommu_test_cmd.encode(v),
      member: TEST_OP_MEMBER[v.op as number],
      name: 'iommu_test_cmd' as StructName,
    });
    const choices = [
      () => ({
        request: IOMMU_IOAS_MAP,
        name: 'iommu_ioas_map' as StructName,
        bytes: structs.iommu_ioas_map.encode({
          size: 40,
          flags: RW | (this.chance(0.3) ? FIXED : 0),
          ioas_id: ioasId,
          user_va: buf + BigInt(this.int(56)) * PAGE,
          length: pages * PAGE,
          iova: fresh,
        }),
      }),
      () => ({
        request: IOMMU_IOAS_MAP_FILE,
        name: 'iommu_ioas_map_file' as StructName,
        bytes: structs.iommu_ioas_map_file.encode({
          size: 40,
          flags: RW | (this.chance(0.3) ? FIXED : 0),
          ioas_id: ioasId,
          fd: memfd,
          start: BigInt(this.int(200)) * PAGE,
          length: pages * PAGE,
          iova: fresh,
        }),
      }),
      () => ({
        request: IOMMU_IOAS_UNMAP,
        name: 'iommu_ioas_unmap' as StructName,
        bytes: structs.iommu_ioas_unmap.encode({ size: 24, ioas_id: ioasId, iova, length: len }),
      }),
      () => ({
        request: IOMMU_IOAS_COPY,
        name: 'iommu_ioas_copy' as StructName,
        bytes: structs.iommu_ioas_copy.encode({
          size: 40,
          flags: RW,
          dst_ioas_id: otherId,
          src_ioas_id: ioasId,
          length: small,
          src_iova: iova,
        }),
      }),
      () => ({
        request: IOMMU_IOAS_IOVA_RANGES,
        name: 'iommu_ioas_iova_ranges' as StructName,
        bytes: structs.iommu_ioas_iova_ranges.encode({
          size: 32,
          ioas_id: ioasId,
          num_iovas: this.int(4),
          allowed_iovas: scratch + 5000n,
        }),
      }),
      () => {
        const start = fresh;
        proc.writeMemory(
          scratch + 5000n,
          structs.iommu_iova_range.encode({ start, last: start + pages * PAGE - 1n }),
        );
        return {
          request: IOMMU_IOAS_ALLOW_IOVAS,
          name: 'iommu_ioas_allow_iovas' as StructName,
          bytes: structs.iommu_ioas_allow_iovas.encode({
            size: 24,
            ioas_id: ioasId,
            num_iovas: this.int(2),
            allowed_iovas: scratch + 5000n,
          }),
        };
      },
      () => ({
        request: IOMMU_DESTROY,
        name: 'iommu_destroy' as StructName,
        bytes: structs.iommu_destroy.encode({ size: 8, id: anyId }),
      }),
      () => ({
        request: IOMMU_OPTION,
        name: 'iommu_option' as StructName,
        bytes: structs.iommu_option.encode({
          size: 24,
          option_id: this.int(2),
          op: this.int(2),
          object_id: this.chance(0.5) ? ioasId : 0,
          val64: BigInt(this.int(2)),
        }),
      }),
      () => ({
        request: IOMMU_IOAS_ALLOC,
        name: 'iommu_ioas_alloc' as StructName,
        bytes: structs.iommu_ioas_alloc.encode({ size: 12 }),
      }),
      () => t({ size: 72, op: IOMMU_TEST_OP_MOCK_DOMAIN, id: ioasId }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
          id: stdev,
          mock_domain_replace: { pt_id: anyId },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_ADD_RESERVED,
          id: ioasId,
          add_reserved: { start: fresh, length: pages * PAGE },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_CREATE_ACCESS,
          id: ioasId,
          create_access: { flags: this.int(2) },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_ACCESS_PAGES,
          id: accessFd,
          access_pages: { flags: this.int(2), iova, length: small },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_ACCESS_RW,
          id: accessFd,
          access_rw: {
            iova,
            length: BigInt(1 + this.int(512)),
            uptr: scratch + 5500n,
            flags: this.int(2),
          },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
          id: accessFd,
          destroy_access_pages: { access_pages_id: this.int(4) },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
          id: accessFd,
          access_replace_ioas: { ioas_id: otherId },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_MD_CHECK_REFS,
          check_refs: { uptr: buf + BigInt(this.int(64)) * PAGE, length: PAGE, refs: this.int(3) },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_MD_CHECK_MAP,
          id: anyId,
          check_map: { iova, length: small, uptr: buf },
        }),
      () => ({
        request: IOMMU_IOAS_CHANGE_PROCESS,
        name: 'iommu_ioas_change_process' as StructName,
        bytes: structs.iommu_ioas_change_process.encode({ size: 8 }),
      }),
      () => ({
        request: IOMMU_FAULT_QUEUE_ALLOC,
        name: 'iommu_fault_alloc' as StructName,
        bytes: structs.iommu_fault_alloc.encode({ size: 16, flags: this.chance(0.9) ? 0 : 1 }),
      }),
      () => ({
        request: IOMMU_HWPT_ALLOC,
        name: 'iommu_hwpt_alloc' as StructName,
        bytes: structs.iommu_hwpt_alloc.encode({
          size: 48,
          flags: this.pick([0, 1, 2, 4, 4, 8, 9, 10, 12]),
          dev_id: anyId,
          pt_id: this.chance(0.5) ? ioasId : anyId,
          data_type: this.chance(0.5) ? 0 : IOMMU_HWPT_DATA_SELFTEST,
          data_len: this.pick([0, 4, 3, 8]),
          data_uptr: this.chance(0.8) ? scratch + 6000n : 0n,
          fault_id: anyId,
        }),
      }),
      () => ({
        request: IOMMU_GET_HW_INFO,
        name: 'iommu_hw_info' as StructName,
        bytes: structs.iommu_hw_info.encode({
          size: 40,
          flags: this.int(2),
          dev_id: anyId,
          data_len: this.pick([0, 4, 8, 64]),
          data_uptr: this.chance(0.8) ? scratch + 6000n : 0n,
          in_data_type: this.pick([0, IOMMU_HW_INFO_TYPE_SELFTEST, 1]),
        }),
      }),
      () => ({
        request: IOMMU_HWPT_SET_DIRTY_TRACKING,
        name: 'iommu_hwpt_set_dirty_tracking' as StructName,
        bytes: structs.iommu_hwpt_set_dirty_tracking.encode({
          size: 16,
          flags: this.int(2),
          hwpt_id: anyId,
        }),
      }),
      () => ({
        request: IOMMU_HWPT_GET_DIRTY_BITMAP,
        name: 'iommu_hwpt_get_dirty_bitmap' as StructName,
        bytes: structs.iommu_hwpt_get_dirty_bitmap.encode({
          size: 48,
          hwpt_id: anyId,
          flags: this.int(2),
          iova: iova & ~2047n,
          length: len,
          page_size: this.pick([2048n, 4096n, 0n, 3n]),
          data: scratch + BigInt(this.int(4096)),
        }),
      }),
      () => {
        proc.writeMemory(
          scratch + 6000n,
          structs.iommu_hwpt_invalidate_selftest.encode({
            flags: this.int(2),
            iotlb_id: this.int(5),
          }),
        );
        return {
          request: IOMMU_HWPT_INVALIDATE,
          name: 'iommu_hwpt_invalidate' as StructName,
          bytes: structs.iommu_hwpt_invalidate.encode({
            size: 32,
            hwpt_id: anyId,
            data_uptr: scratch + 6000n,
            data_type: this.chance(0.8) ? IOMMU_HWPT_INVALIDATE_DATA_SELFTEST : 0,
            entry_len: this.pick([8, 9, 1, 0]),
            entry_num: this.int(3),
          }),
        };
      },
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_DIRTY,
          id: anyId,
          dirty: {
            iova: iova & ~2047n,
            length: small,
            page_size: 2048n,
            uptr: scratch + BigInt(this.int(4096)),
          },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_MD_CHECK_IOTLB,
          id: anyId,
          check_iotlb: { id: this.int(5), iotlb: this.chance(0.5) ? IOMMU_TEST_IOTLB_DEFAULT : 0 },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_TRIGGER_IOPF,
          trigger_iopf: {
            dev_id: anyId,
            pasid: this.pick([0, 7, 2048]),
            grpid: this.int(4),
            perm: 3,
            addr: iova,
          },
        }),
      () =>
        t({
          size: 72,
          op: this.pick([
            IOMMU_TEST_OP_PASID_ATTACH,
            IOMMU_TEST_OP_PASID_REPLACE,
            IOMMU_TEST_OP_PASID_DETACH,
            IOMMU_TEST_OP_PASID_CHECK_HWPT,
          ]),
          id: this.chance(0.7) ? pasidStdev : anyId,
          pasid_attach: { pasid: this.pick([0, 7, 1024, 2048]), pt_id: anyId },
        }),
      () => ({
        request: VFIO_DEVICE_ATTACH_IOMMUFD_PT,
        name: 'vfio_device_attach_iommufd_pt' as StructName,
        bytes: structs.vfio_device_attach_iommufd_pt.encode({ argsz: 16, pt_id: anyId }),
      }),
      () => ({
        request: VFIO_DEVICE_BIND_IOMMUFD,
        name: 'vfio_device_bind_iommufd' as StructName,
        bytes: structs.vfio_device_bind_iommufd.encode({ argsz: 24, iommufd: fd }),
      }),
    ];
    const call: {
      request: number;
      bytes: Uint8Array;
      name: StructName;
      member?: string | undefined;
    } = this.pick(choices)();
    if (this.chance(0.5)) {
      // Replace one field (of the union member, for IOMMU_TEST_CMD) with a random value.
      const info = ioctlByRequest(call.request);
      const fields = Object.entries(structs[call.name].fields).filter(
        ([path, f]) =>
          (f as { type: string }).type !== 'struct' &&
          (call.member === undefined || !path.includes('.') || path.startsWith(`${call.member}.`)),
      ) as [string, { offset: number; size: number }][];
      const [path, f] = this.pick(fields);
      const v = this.value(
        path.slice(path.lastIndexOf('.') + 1),
        f.size * 8,
        call.bytes.length,
        info?.minSize ?? 0,
      );
      const view = new DataView(call.bytes.buffer);
      if (f.size === 8) view.setBigUint64(f.offset, v, true);
      else if (f.size === 4) view.setUint32(f.offset, Number(v), true);
    }
    return { request: call.request, bytes: call.bytes };
  }

  /** A request number. */
  request(): number {
    const all = Object.values(ioctls).map((i) => i.request);
    switch (this.int(14)) {
      case 0:
      case 1:
      case 2:
        return IOMMU_TEST_CMD;
      case 3:
        return 0x3b64 + this.int(26); // VFIO_BASE + n: container and device numbers
      case 4:
        return this.pick([0x3b7f, 0x3b95, 0x3b9f, 0x3ba1, 0x3bff, 0x3b00, 0]);
      case 5:
        return this.chance(0.5)
          ? this.int(2 ** 32)
          : ((3 << 30) | (this.int(256) << 16) | this.pick(all)) >>> 0;
      default:
        return this.pick(all);
    }
  }
}

/** One fuzz run: every call's result checked, then everything closed. */
function fuzz(seed: number): number {
  const world = buildWorld();
  const { host, proc } = world;
  populate(world);
  const gen = new Gen(prng(seed), world);
  const fdOf = (kind: string): number | undefined =>
    proc.openFiles().find((f) => f.kind === kind)?.fd;
  let calls = 0;
  for (let step = 0; step < CALLS; step++) {
    // Now and then close something; a closed /dev/iommu comes back populated.
    if (gen.chance(0.003)) {
      const open = proc.openFiles();
      const victim = open[gen.int(open.length)];
      if (victim !== undefined) proc.close(victim.fd);
    }
    if (fdOf('iommufd') === undefined) populate(world);

    // read / write / poll on any fd (the fault fd among them) with random counts and contents.
    if (gen.chance(0.05)) {
      const open = proc.openFiles();
      const target = gen.chance(0.9) ? (open[gen.int(open.length)]?.fd ?? 3) : gen.int(12) - 1;
      const buffer = new Uint8Array(gen.pick([0, 8, 16, 40, 80, 39, 7, gen.int(200)]));
      for (let i = 0; i < buffer.length; i++) buffer[i] = gen.chance(0.7) ? 0 : gen.int(256);
      if (buffer.length >= 8 && gen.chance(0.5)) buffer[0] = 1 + gen.int(3); // a plausible cookie
      const pos = gen.chance(0.9) ? 0 : 1;
      const rc = gen.chance(0.5)
        ? proc.read(target, buffer, pos)
        : gen.chance(0.8)
          ? proc.write(target, buffer, pos)
          : proc.poll(target);
      if (!Number.isInteger(rc) || (rc < 0 && errnoName(-rc) === undefined) || host.internalErrors)
        throw new Error(`seed ${seed} step ${step}: read/write/poll(${target}) = ${rc}`);
    }
    const planned = gen.chance(0.4) ? gen.plausible() : undefined;
    const request = planned?.request ?? gen.request();
    const fds = proc.openFiles();
    const fd = gen.chance(0.85)
      ? ((fdOf(request >>> 0 >= 0x3b76 && request <= 0x3b78 ? 'vfio' : 'iommufd') ?? 3) as number)
      : gen.chance(0.7)
        ? (fds[gen.int(fds.length)]?.fd ?? 3)
        : gen.int(12) - 1;
    const bytes = planned?.bytes ?? gen.payload(request);
    let arg: Uint8Array | bigint;
    const mode = gen.int(20);
    if (mode < 11) arg = bytes;
    else if (mode < 17) {
      // In process memory, sometimes running into the unmapped page after the scratch pages.
      const at = gen.chance(0.15)
        ? 2n * PAGE - BigInt(gen.int(bytes.length + 1))
        : BigInt(gen.int(4096));
      proc.writeMemory(world.scratch + at, bytes.subarray(0, Number(2n * PAGE - at)));
      arg = world.scratch + at;
    } else if (mode < 18) arg = 0n;
    else arg = gen.pick([8n, world.scratch + 3n * PAGE, MAX - 7n, 1n << 47n]);

    let rc: number;
    try {
      rc = proc.ioctl(fd, request, arg);
    } catch (e) {
      throw new Error(
        `seed ${seed} step ${step}: ioctl(${fd}, 0x${request.toString(16)}) threw ${String(e)}`,
      );
    }
    calls++;
    const where = () =>
      `seed ${seed} step ${step}: ioctl(${fd}, 0x${request.toString(16)}, ${
        arg instanceof Uint8Array
          ? `[${Buffer.from(arg).toString('hex')}]`
          : `0x${arg.toString(16)}`
      }) = ${rc}; ${JSON.stringify(proc.lastError())}`;
    if (!Number.isInteger(rc) || (rc < 0 && errnoName(-rc) === undefined))
      throw new Error(`bad result: ${where()}`);
    if (host.internalErrors !== 0) throw new Error(`internal error: ${where()}`);
  }
  for (const f of proc.openFiles()) expect(proc.close(f.fd)).toBe(0);
  expect(proc.openFiles()).toEqual([]);
  expect(host.pinnedPages(), `seed ${seed}`).toBe(0);
  expect(host.internalErrors, `seed ${seed}`).toBe(0);
  return calls;
}

describe('ioctl fuzz', () => {
  it('1-8, 23: random requests, sizes, bytes, ids and argument addresses never throw, always answer >= 0 or a known -errno, and closing every fd unpins everything', () => {
    let calls = 0;
    for (const seed of SEEDS) calls += fuzz(seed);
    expect(calls).toBe(SEEDS.length * CALLS);
  }, 60_000);
});
