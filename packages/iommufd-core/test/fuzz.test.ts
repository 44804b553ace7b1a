/**
 * ioctl fuzz test: thousands of random requests (every iommufd number, the
 * viommu ones included, IOMMU_TEST_CMD with every op, VFIO numbers, unused
 * slots, random numbers) with random sizes, bytes, small ids, and arguments
 * given as bytes or as process addresses (mapped, unmapped, straddling a
 * guard page, NULL), in two worlds:
 *
 * - a selftest host with a mock domain, maps, a bound VFIO device, a pinning
 *   access, a PASID-capable mock device with a PASID attached, a NEST_PARENT
 *   HWPT with a nested HWPT, a dirty-tracking HWPT, and a selftest vIOMMU
 *   (with data, its two pages mapped) with a vDEVICE, a nested HWPT on it the
 *   device is attached to, a vEVENTQ holding an event and HW queues 0 and 1;
 * - an SMMUv3 host whose SMMU has a Tegra241 CMDQV, with two VFIO devices:
 *   an ARM_SMMUV3 and a TEGRA241_CMDQV vIOMMU on one NEST_PARENT HWPT, a
 *   vDEVICE and an attached nested HWPT (a guest vSTE) on each, vEVENTQs, HW
 *   queues, and device DMA whose stage-1 faults reach a vEVENTQ.
 *
 * Plausible calls aim at that state: HWPT_ALLOC (on an IOAS, a parent or a
 * vIOMMU), GET_HW_INFO, dirty tracking, invalidation of nested HWPTs and of
 * vIOMMUs (random selftest and SMMUv3 command arrays), the PASID, IOPF and
 * vEVENT test ops, VIOMMU / VDEVICE / VEVENTQ / HW_QUEUE_ALLOC with random
 * types, flags, ids, indexes, IOVAs and lengths, DESTROY of any id, unbinding
 * devices that have vDEVICEs. Between calls the fuzzer reads and polls the
 * fds (vEVENTQ fds among them), mmaps random offsets and lengths of the
 * iommufd and munmaps them, and runs device DMA.
 *
 * Nothing may throw, the model may count no internal error, every result
 * must be >= 0 or a known -errno whose reason was recorded, a failed ioctl
 * must leave `proc.inspect()` of the context as it was (but for the whole
 * areas a failed unmap removed before it stopped, as the kernel's unmap is
 * not atomic), the vIOMMU object graph must stay consistent after every step
 * (virt_ids unique per vIOMMU, one vDEVICE per device, HW queue indexes a
 * prefix, every users count what the graph holds, so DESTROY succeeds
 * exactly when nothing holds the object, an unbound device's vDEVICE a
 * tombstone), and once every fd is closed and every mapping gone no page may
 * stay pinned (a mapping of the iommufd keeps its context until then). Each
 * world must reach its targets (successes and errnos of every vIOMMU ioctl,
 * tombstones, vEVENTs and lost events read, mmaps, forwarded DMA faults).
 */

import {
  EBUSY,
  EINVAL,
  ENOENT,
  ENXIO,
  errnoName,
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
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
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
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
  IOMMU_TEST_OP_TRIGGER_VEVENT,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
  ioctlByRequest,
  ioctls,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_DEVICE_PASID,
  type StructName,
  structs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_IOMMU_UNMAP_DMA,
  veventRecordSize,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { type ContextReport, createHost, type Host, type Process } from '../src/index.js';
import { FIXED, ioasAlloc, map, mockDomain, mockReplace, RW, testCmd } from './helpers.js';
import { vfioAttach, vfioBind } from './helpers-c.js';
import { MAX, prng } from './helpers-d.js';

const PAGE = 4096n;
const SEEDS = (process.env.FUZZ_SEEDS ?? '1,2,3,4').split(',').map(Number);
const CALLS = Number(process.env.FUZZ_CALLS ?? 2500);
/** A minute for the default run; longer runs (FUZZ_SEEDS, FUZZ_CALLS) get 10 ms a call (a context grows with its calls). */
const TIMEOUT = SEEDS.length * CALLS <= 10_000 ? 60_000 : SEEDS.length * CALLS * 10;

/** The SMMUv3 world's devices: a PCI function with ATS, and a platform device with two stream ids. */
const SMMU_DEVICES = ['0000:00:03.0', 'dma0'] as const;
/** Where the SMMUv3 world's guest RAM sits: GPA 0 = IOVA 0 of the parent's IOAS, 32 pages. */
const GUEST_RAM_PAGES = 32n;
/** The GPA the guest's vSTE points its CD table at (zeros: a stage-1 DMA raises C_BAD_CD). */
const CD_TABLE_GPA = 0x8000n;

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

/** Which host a run fuzzes. */
type WorldKind = 'selftest' | 'smmuv3';

interface World {
  readonly kind: WorldKind;
  readonly host: Host;
  readonly proc: Process;
  /** Source memory of the maps (64 pages, then a guard page). */
  readonly buf: bigint;
  /** Where argument structs and their arrays are written (2 pages). */
  readonly scratch: bigint;
  /** A 1 MiB memfd for MAP_FILE. */
  readonly memfd: number;
  /** Mappings of an iommufd the fuzzer made and has not unmapped yet. */
  readonly mappings: { va: bigint; length: bigint }[];
  /** vEVENTQ fds of the current context the fuzzer saw created, with their object ids. */
  readonly veventqFds: Map<number, number>;
  /** The last sequence number read from each vEVENTQ fd. */
  readonly lastSeq: Map<number, number>;
}

/**
 * A selftest host with a VFIO device on the mock IOMMU, or an SMMUv3 host
 * (stage 2 for nesting, a Tegra241 CMDQV with three user VINTFs) with a PCI
 * and a platform device; a map source buffer and a scratch buffer.
 */
function buildWorld(kind: WorldKind): World {
  const host =
    kind === 'selftest'
      ? createHost({ selftest: true, devices: [{ name: '0000:00:02.0', iommu: 'mock0' }] })
      : createHost({
          iommus: [{ name: 'smmu0', model: 'smmuv3' }],
          devices: [
            { name: SMMU_DEVICES[0], iommu: 'smmu0', ats: true },
            { name: SMMU_DEVICES[1], iommu: 'smmu0', streamIds: [0x41, 0x42] },
          ],
          viommu: { tegra241Cmdqv: { smmu0: { vintfs: 4, lvcmdqsPerVintf: 4, sidsPerVintf: 4 } } },
        });
  const proc = host.createProcess();
  const buf = proc.mmap(64n * PAGE);
  const scratch = proc.mmap(2n * PAGE);
  const memfd = proc.memfdCreate('fuzz', 1 << 20);
  return {
    kind,
    host,
    proc,
    buf,
    scratch,
    memfd,
    mappings: [],
    veventqFds: new Map(),
    lastSeq: new Map(),
  };
}

/** Run a setup ioctl that must succeed; the argument bytes as the kernel left them. */
function must(proc: Process, fd: number, request: number, bytes: Uint8Array): Uint8Array {
  const rc = proc.ioctl(fd, request, bytes);
  expect(rc, `setup ioctl 0x${request.toString(16)}: ${JSON.stringify(proc.lastError())}`).toBe(0);
  return bytes;
}

/** Where setup calls put their driver data (past the bytes the random arguments use). */
function dataAt(world: World, data: Uint8Array): bigint {
  const uptr = world.scratch + 6000n;
  expect(world.proc.writeMemory(uptr, data)).toBe(0);
  return uptr;
}

/** IOMMU_HWPT_ALLOC for `devId` on `ptId` (an IOAS, a parent or a vIOMMU), with vendor data when given. */
function allocHwpt(
  world: World,
  fd: number,
  devId: number,
  ptId: number,
  flags: number,
  data?: { type: number; bytes: Uint8Array },
): number {
  const arg = structs.iommu_hwpt_alloc.encode({
    size: 48,
    flags,
    dev_id: devId,
    pt_id: ptId,
    data_type: data?.type ?? 0,
    data_len: data?.bytes.length ?? 0,
    data_uptr: data === undefined ? 0n : dataAt(world, data.bytes),
  });
  return structs.iommu_hwpt_alloc.decode(must(world.proc, fd, IOMMU_HWPT_ALLOC, arg)).out_hwpt_id;
}

/** IOMMU_VIOMMU_ALLOC; with data, the region it publishes is mapped and remembered. */
function allocViommu(
  world: World,
  fd: number,
  type: number,
  devId: number,
  hwptId: number,
  data?: Uint8Array,
): number {
  const arg = structs.iommu_viommu_alloc.encode({
    size: 40,
    type,
    dev_id: devId,
    hwpt_id: hwptId,
    data_len: data?.length ?? 0,
    data_uptr: data === undefined ? 0n : dataAt(world, data),
  });
  const id = structs.iommu_viommu_alloc.decode(
    must(world.proc, fd, IOMMU_VIOMMU_ALLOC, arg),
  ).out_viommu_id;
  if (data !== undefined) {
    // Both drivers' data answer with {offset, length} in their last 16 bytes.
    const out = world.proc.readMemory(world.scratch + 6000n + BigInt(data.length - 16), 16);
    const view = new DataView((out as Uint8Array).buffer);
    const offset = view.getBigUint64(0, true);
    const length = view.getBigUint64(8, true);
    const va = world.proc.mmap(length, { fd, offset });
    expect(va, JSON.stringify(world.proc.lastError())).toBeGreaterThan(0n);
    world.mappings.push({ va, length });
  }
  return id;
}

/** IOMMU_VDEVICE_ALLOC. */
function allocVdevice(world: World, fd: number, viommuId: number, devId: number, virtId: bigint) {
  const arg = structs.iommu_vdevice_alloc.encode({
    size: 24,
    viommu_id: viommuId,
    dev_id: devId,
    virt_id: virtId,
  });
  must(world.proc, fd, IOMMU_VDEVICE_ALLOC, arg);
}

/** IOMMU_VEVENTQ_ALLOC; its fd is remembered. */
function allocVeventq(world: World, fd: number, viommuId: number, type: number, depth: number) {
  const arg = structs.iommu_veventq_alloc.encode({
    size: 32,
    viommu_id: viommuId,
    type,
    veventq_depth: depth,
  });
  const out = structs.iommu_veventq_alloc.decode(must(world.proc, fd, IOMMU_VEVENTQ_ALLOC, arg));
  world.veventqFds.set(out.out_veventq_fd, out.out_veventq_id);
}

/** IOMMU_HW_QUEUE_ALLOC. */
function allocHwQueue(
  world: World,
  fd: number,
  viommuId: number,
  type: number,
  index: number,
  iova: bigint,
  length: bigint,
) {
  const arg = structs.iommu_hw_queue_alloc.encode({
    size: 40,
    viommu_id: viommuId,
    type,
    index,
    nesting_parent_iova: iova,
    length,
  });
  must(world.proc, fd, IOMMU_HW_QUEUE_ALLOC, arg);
}

/** A guest vSTE: V, Config (0 abort, 4 bypass, 5 stage-1), S1ContextPtr for stage 1. */
function vste(config: bigint, cdTable = CD_TABLE_GPA): Uint8Array {
  const w0 = 1n | (config << 1n) | (config === 5n ? cdTable & ~63n : 0n);
  return structs.iommu_hwpt_arm_smmuv3.encode({ ste: [w0, 0n] });
}

/**
 * Open /dev/iommu and give it state worth fuzzing. A new context: the
 * fuzzer's records of the old one go, and so do its mappings (each would
 * keep the old context alive).
 */
function populate(world: World): void {
  world.veventqFds.clear();
  world.lastSeq.clear();
  for (const m of world.mappings.splice(0)) expect(world.proc.munmap(m.va, m.length)).toBe(0);
  if (world.kind === 'selftest') populateSelftest(world);
  else populateSmmu(world);
  expect(world.host.pinnedPages()).toBeGreaterThan(0);
  expect(world.host.internalErrors).toBe(0);
}

/**
 * The selftest world: IOAS A with a mock domain and four maps, IOAS B with
 * the VFIO device bound and attached and a map, an access on A pinning two
 * pages, the part-2 HWPTs and PASID state, and the vIOMMU state.
 */
function populateSelftest(world: World): void {
  const { proc, buf } = world;
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
  const areaA = proc.inspect(fd)?.ioas.find((x) => x.id === a)?.areas[0]?.iova ?? 0n;
  const pin = structs.iommu_test_cmd.encode({
    size: 72,
    op: IOMMU_TEST_OP_ACCESS_PAGES,
    id: accessFd,
    access_pages: { iova: areaA, length: 2n * PAGE },
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
  const selftestData = {
    type: IOMMU_HWPT_DATA_SELFTEST,
    bytes: structs.iommu_hwpt_selftest.encode({ iotlb: IOMMU_TEST_IOTLB_DEFAULT }),
  };
  const parent = allocHwpt(
    world,
    fd,
    idev,
    a,
    IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID,
  );
  allocHwpt(world, fd, idev, parent, IOMMU_HWPT_ALLOC_PASID, selftestData);
  const dirty = allocHwpt(world, fd, idev, a, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
  const enable = structs.iommu_hwpt_set_dirty_tracking.encode({
    size: 16,
    flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
    hwpt_id: dirty,
  });
  expect(proc.ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, enable)).toBe(0);
  expect(mockReplace(proc, fd, stdev, parent).rc).toBe(0);
  const pasid = structs.iommu_test_cmd.encode({
    size: 72,
    op: IOMMU_TEST_OP_PASID_ATTACH,
    id: stdev,
    pasid_attach: { pasid: 7, pt_id: parent },
  });
  expect(proc.ioctl(fd, IOMMU_TEST_CMD, pasid)).toBe(0);
  // vIOMMU state: a mock device of its own on A, a NEST_PARENT HWPT, a selftest vIOMMU with
  // data (its two pages mapped), a vDEVICE, a nested HWPT on the vIOMMU the device is attached
  // to, a vEVENTQ holding one event, and HW queues 0 and 1 pinning pages of A.
  const md = mockDomain(proc, fd, a);
  expect(md.rc).toBe(0);
  const parent2 = allocHwpt(world, fd, md.idevId, a, IOMMU_HWPT_ALLOC_NEST_PARENT);
  const viommu = allocViommu(
    world,
    fd,
    IOMMU_VIOMMU_TYPE_SELFTEST,
    md.idevId,
    parent2,
    structs.iommu_viommu_selftest.encode({ in_data: 0xfeed }),
  );
  allocVdevice(world, fd, viommu, md.idevId, 0x99n);
  const nested = allocHwpt(world, fd, md.idevId, viommu, 0, selftestData);
  expect(mockReplace(proc, fd, md.stdevId, nested).rc).toBe(0);
  allocVeventq(world, fd, viommu, IOMMU_VEVENTQ_TYPE_SELFTEST, 1);
  const trigger = testCmd(proc, fd, {
    op: IOMMU_TEST_OP_TRIGGER_VEVENT,
    trigger_vevent: { dev_id: md.idevId },
  });
  expect(trigger.rc).toBe(0);
  allocHwQueue(world, fd, viommu, IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, areaA + 4n * PAGE, PAGE);
  allocHwQueue(
    world,
    fd,
    viommu,
    IOMMU_HW_QUEUE_TYPE_SELFTEST,
    1,
    areaA + 5n * PAGE + 2048n,
    2048n,
  );
}

/**
 * The SMMUv3 world: guest RAM mapped at GPA 0 of an IOAS, both devices bound
 * (their fds reopened, so an older context lets them go), one NEST_PARENT
 * HWPT with an ARM_SMMUV3 vIOMMU (the PCI device's vSID 0x10, a stage-1
 * vSTE, a vEVENTQ) and a TEGRA241_CMDQV vIOMMU (data, its VINTF page mapped;
 * the platform device's vSID 0x20, a bypass vSTE, a vEVENTQ, two LVCMDQs),
 * and one stage-1 fault queued by a DMA.
 */
function populateSmmu(world: World): void {
  const { host, proc, buf } = world;
  // The devices, and the three VINTFs of the CMDQV, come free once nothing holds the old context.
  for (const f of proc.openFiles()) {
    if (f.kind === 'vfio' || f.kind === 'veventq' || f.kind === 'fault') proc.close(f.fd);
  }
  const fd = proc.open('/dev/iommu');
  const ioas = ioasAlloc(proc, fd);
  expect(map(proc, fd, ioas, buf, GUEST_RAM_PAGES * PAGE, 0n).rc).toBe(0);
  const [pci, platform] = SMMU_DEVICES.map((name) => {
    const vfio = proc.open(host.device(name)?.path ?? '');
    const bound = vfioBind(proc, vfio, fd);
    expect(bound.rc, JSON.stringify(proc.lastError())).toBe(0);
    return { vfio, devid: bound.devid };
  }) as [{ vfio: number; devid: number }, { vfio: number; devid: number }];
  const parent = allocHwpt(world, fd, pci.devid, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  const smmu = allocViommu(world, fd, IOMMU_VIOMMU_TYPE_ARM_SMMUV3, pci.devid, parent);
  const tegra = allocViommu(
    world,
    fd,
    IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
    platform.devid,
    parent,
    structs.iommu_viommu_tegra241_cmdqv.encode({
      out_vintf_mmap_offset: 0n,
      out_vintf_mmap_length: 0n,
    }),
  );
  allocVdevice(world, fd, smmu, pci.devid, 0x10n);
  allocVdevice(world, fd, tegra, platform.devid, 0x20n);
  const s1 = { type: IOMMU_HWPT_DATA_ARM_SMMUV3, bytes: vste(5n) };
  const bypass = { type: IOMMU_HWPT_DATA_ARM_SMMUV3, bytes: vste(4n) };
  expect(vfioAttach(proc, pci.vfio, allocHwpt(world, fd, pci.devid, smmu, 0, s1)).rc).toBe(0);
  expect(
    vfioAttach(proc, platform.vfio, allocHwpt(world, fd, platform.devid, tegra, 0, bypass)).rc,
  ).toBe(0);
  allocVeventq(world, fd, smmu, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, 1);
  allocVeventq(world, fd, tegra, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, 2);
  allocHwQueue(world, fd, tegra, IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, 0, 16n * PAGE, PAGE);
  allocHwQueue(world, fd, tegra, IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, 1, 17n * PAGE, 256n);
  host.deviceDma(SMMU_DEVICES[0], { iova: 0x1000n, length: 8 });
  const pending = proc.inspect(fd)?.viommus.find((v) => v.id === smmu)?.veventqs[0]?.pending;
  expect(pending, 'a stage-1 fault of the PCI device reaches the vEVENTQ').toBe(1);
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
   * A plausible call (`report` is the context now): live ids, IOVAs of
   * existing areas, the access fd, the memfd, the vIOMMUs, their parents'
   * areas and the virt_ids in use, with driver data and invalidation arrays
   * written to the scratch buffer; half of them on the vIOMMU side. Then,
   * half the time, one field replaced by a random value. `fd` names the VFIO
   * device fd a VFIO call should go to.
   */
  plausible(report: ContextReport | null): {
    request: number;
    bytes: Uint8Array;
    fd: number | undefined;
  } {
    const { proc, buf, scratch, memfd, kind } = this.world;
    const files = proc.openFiles();
    const fd = files.find((f) => f.kind === 'iommufd')?.fd ?? 3;
    const accessFd = files.find((f) => f.kind === 'access')?.fd ?? 5;
    const vfioFds = files.filter((f) => f.kind === 'vfio').map((f) => f.fd);
    const ioases = report?.ioas ?? [];
    const ioas = ioases.length > 0 ? this.pick(ioases) : undefined;
    const ioasId = ioas?.id ?? 1;
    const otherId = ioases.length > 0 ? this.pick(ioases).id : 2;
    const area = ioas !== undefined && ioas.areas.length > 0 ? this.pick(ioas.areas) : undefined;
    const objects = report?.objects ?? [];
    const anyId = objects.length > 0 ? this.pick(objects).id : 1;
    const stdevs = objects.filter((o) => o.type === 'SELFTEST');
    const stdev = stdevs[0]?.id ?? 3;
    const pasidStdev = stdevs[1]?.id ?? stdev;
    const pages = BigInt(1 + this.int(8));
    const iova = area?.iova ?? 16n << 20n;
    const len = area !== undefined ? area.last - area.iova + 1n : pages * PAGE;
    const small = len < 16n * PAGE ? len : 16n * PAGE;
    const fresh = (16n << 20n) + BigInt(this.int(4096)) * PAGE;
    // The vIOMMU side: a live id of a kind most of the time, any id otherwise.
    const idOf = (xs: readonly { id: number }[]): number =>
      xs.length > 0 && this.chance(0.85) ? this.pick(xs).id : anyId;
    const viommus = report?.viommus ?? [];
    const viommu = viommus.length > 0 ? this.pick(viommus) : undefined;
    const viommuId = viommu !== undefined && this.chance(0.85) ? viommu.id : anyId;
    const devId = idOf(report?.devices ?? []);
    const hwpts = report?.hwpts ?? [];
    const parentId = idOf(hwpts.filter((h) => h.nestParent));
    const onViommu = hwpts.filter((h) => h.viommu !== 0);
    // Devices attached (RID or PASID) to a nested HWPT of a vIOMMU: the ones events come from.
    const vmasters = (report?.devices ?? []).filter((d) =>
      d.attachments.some((a) => onViommu.some((h) => h.id === a.hwpt)),
    );
    const virtIds = viommus.flatMap((v) => v.vdevices.map((d) => d.virtId));
    const virtId = (): bigint =>
      virtIds.length > 0 && this.chance(0.5)
        ? this.pick(virtIds)
        : this.pick([0n, 1n, 0x10n, 0x20n, 0x99n, BigInt(this.int(64)), 0xffff_ffffn, 1n << 32n]);
    // HW queues go to a vIOMMU that has them (not a plain ARM_SMMUV3 one), in its parent's IOAS.
    const withQueues = viommus.filter((v) => v.driver !== 'arm-smmuv3');
    const queueViommu = withQueues.length > 0 ? this.pick(withQueues) : viommu;
    const parentIoasId = hwpts.find((h) => h.id === queueViommu?.parent)?.ioas;
    const queueAreas = ioases.find((x) => x.id === parentIoasId)?.areas ?? [];
    const queueArea = queueAreas.length > 0 ? this.pick(queueAreas) : undefined;
    const smmu = kind === 'smmuv3';
    const viommuType = smmu
      ? this.pick([IOMMU_VIOMMU_TYPE_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV])
      : IOMMU_VIOMMU_TYPE_SELFTEST;
    const t = (v: Parameters<typeof structs.iommu_test_cmd.encode>[0]) => ({
      request: IOMMU_TEST_CMD,
      bytes: structs.iommu_test_cmd.encode(v),
      member: TEST_OP_MEMBER[v.op as number],
      name: 'iommu_test_cmd' as StructName,
    });
    /** `bytes` at scratch + 6000, sometimes followed by 8 random bytes (E2BIG when read). */
    const data = (bytes: Uint8Array): bigint => {
      const tail = new Uint8Array(8);
      if (this.chance(0.3)) tail[this.int(8)] = 1 + this.int(255);
      proc.writeMemory(scratch + 6000n, bytes);
      proc.writeMemory(scratch + 6000n + BigInt(bytes.length), tail);
      return scratch + 6000n;
    };
    type Call = {
      request: number;
      bytes: Uint8Array;
      name: StructName;
      member?: string | undefined;
      fd?: number;
    };
    const common: (() => Call)[] = [
      () => ({
        request: IOMMU_IOAS_MAP,
        name: 'iommu_ioas_map' as StructName,
        bytes: structs.iommu_ioas_map.encode({
          size: 40,
          flags: RW | (this.chance(0.3) ? FIXED : 0),
          ioas_id: ioasId,
          // Sometimes a mapping of the iommufd itself (a vIOMMU's pages).
          user_va:
            this.world.mappings.length > 0 && this.chance(0.1)
              ? this.pick(this.world.mappings).va
              : buf + BigInt(this.int(56)) * PAGE,
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
      () => {
        // Across areas (through ones a HW queue locks), or everything: the kernel's unmap is not atomic.
        const areas = ioas?.areas ?? [];
        const a = areas.length > 0 ? this.pick(areas) : undefined;
        const b = areas.length > 0 ? this.pick(areas) : undefined;
        let [from, to] = [0n, MAX];
        if (a !== undefined && b !== undefined && this.chance(0.9)) {
          [from, to] = a.iova <= b.iova ? [a.iova, b.last] : [b.iova, a.last];
          // Now and then stop inside the last area: the areas before it go, then ENOENT.
          const cut = 2048n * BigInt(1 + this.int(4));
          if (this.chance(0.3) && to - cut >= from) to -= cut;
        }
        return {
          request: IOMMU_IOAS_UNMAP,
          name: 'iommu_ioas_unmap' as StructName,
          bytes: structs.iommu_ioas_unmap.encode({
            size: 24,
            ioas_id: ioasId,
            iova: from,
            length: to === MAX && from === 0n ? MAX : to - from + 1n,
          }),
        };
      },
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
          in_data_type: this.pick([0, IOMMU_HW_INFO_TYPE_SELFTEST, 1, 2, 3]),
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
    const selftestOnly: (() => Call)[] = [
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
    ];
    // The vIOMMU side: half of the plausible calls.
    const viommuCalls: (() => Call)[] = [
      () => {
        // The driver's data: the mock's in_data, or Tegra241's (output only) struct.
        const own = viommuType === IOMMU_VIOMMU_TYPE_SELFTEST;
        const payload = own
          ? structs.iommu_viommu_selftest.encode({ in_data: this.int(2 ** 32) })
          : new Uint8Array(structs.iommu_viommu_tegra241_cmdqv.sizeof);
        const dataLen =
          viommuType === IOMMU_VIOMMU_TYPE_ARM_SMMUV3 && this.chance(0.7) ? 0 : payload.length;
        return {
          request: IOMMU_VIOMMU_ALLOC,
          name: 'iommu_viommu_alloc' as StructName,
          bytes: structs.iommu_viommu_alloc.encode({
            size: 40,
            flags: this.chance(0.9) ? 0 : (1 << this.int(32)) >>> 0,
            type: this.chance(0.8)
              ? viommuType
              : this.pick([
                  IOMMU_VIOMMU_TYPE_SELFTEST,
                  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
                  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
                  0,
                  0xdead,
                  this.int(2 ** 32),
                ]),
            dev_id: devId,
            hwpt_id: this.chance(0.8) ? parentId : anyId,
            data_len: this.chance(0.8) ? dataLen : this.pick([0, 8, 23, 40, 4096]),
            data_uptr: this.chance(0.9) ? data(payload) : this.pick([0n, 8n]),
          }),
        };
      },
      () => ({
        request: IOMMU_VDEVICE_ALLOC,
        name: 'iommu_vdevice_alloc' as StructName,
        bytes: structs.iommu_vdevice_alloc.encode({
          size: 24,
          viommu_id: viommuId,
          dev_id: devId,
          virt_id: virtId(),
        }),
      }),
      () => ({
        request: IOMMU_VEVENTQ_ALLOC,
        name: 'iommu_veventq_alloc' as StructName,
        bytes: structs.iommu_veventq_alloc.encode({
          size: 32,
          flags: this.chance(0.9) ? 0 : 1,
          viommu_id: viommuId,
          type: this.chance(0.6)
            ? smmu
              ? IOMMU_VEVENTQ_TYPE_ARM_SMMUV3
              : IOMMU_VEVENTQ_TYPE_SELFTEST
            : this.pick([
                IOMMU_VEVENTQ_TYPE_SELFTEST,
                IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
                IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
                0,
                this.int(2 ** 32),
              ]),
          veventq_depth: this.pick([1, 2, 3, 0, 64, this.int(2 ** 32)]),
          __reserved: this.chance(0.95) ? 0 : 1,
        }),
      }),
      () => ({
        request: IOMMU_HW_QUEUE_ALLOC,
        name: 'iommu_hw_queue_alloc' as StructName,
        bytes: structs.iommu_hw_queue_alloc.encode({
          size: 40,
          flags: this.chance(0.95) ? 0 : 1,
          viommu_id: queueViommu !== undefined && this.chance(0.85) ? queueViommu.id : viommuId,
          type: this.chance(0.85)
            ? smmu
              ? IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV
              : IOMMU_HW_QUEUE_TYPE_SELFTEST
            : this.pick([IOMMU_HW_QUEUE_TYPE_SELFTEST, IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, 0]),
          index: this.chance(0.9) ? this.int(4) : this.pick([this.int(8), 2 ** 31]),
          // Inside an area of the parent's IOAS, page or half-page aligned, mostly.
          nesting_parent_iova:
            queueArea !== undefined && this.chance(0.9)
              ? queueArea.iova +
                BigInt(this.int(Number((queueArea.last - queueArea.iova + 1n) / 2048n))) * 2048n
              : this.pick([MAX, MAX - PAGE + 1n, this.addr()]),
          length: this.chance(0.85)
            ? this.pick([PAGE, 2048n, 256n, 32n, 2n * PAGE])
            : this.pick([0n, 48n, 1n << 20n, MAX]),
        }),
      }),
      () => {
        // A nested HWPT on a vIOMMU: the mock's iotlb, or a guest vSTE with random fields.
        const selftest = this.chance(smmu ? 0.1 : 0.9);
        const payload = selftest
          ? structs.iommu_hwpt_selftest.encode({
              iotlb: this.chance(0.8) ? IOMMU_TEST_IOTLB_DEFAULT : this.int(2 ** 32),
            })
          : this.vste();
        return {
          request: IOMMU_HWPT_ALLOC,
          name: 'iommu_hwpt_alloc' as StructName,
          bytes: structs.iommu_hwpt_alloc.encode({
            size: 48,
            flags: this.pick([
              0,
              0,
              0,
              IOMMU_HWPT_ALLOC_PASID,
              IOMMU_HWPT_FAULT_ID_VALID,
              IOMMU_HWPT_ALLOC_NEST_PARENT,
              0x8000_0000,
            ]),
            dev_id: devId,
            pt_id: viommuId,
            data_type: this.chance(0.9)
              ? selftest
                ? IOMMU_HWPT_DATA_SELFTEST
                : IOMMU_HWPT_DATA_ARM_SMMUV3
              : this.pick([0, 1, IOMMU_HWPT_DATA_SELFTEST, IOMMU_HWPT_DATA_ARM_SMMUV3]),
            data_len: this.chance(0.8) ? payload.length : this.pick([0, 3, 15, payload.length + 8]),
            data_uptr: this.chance(0.95) ? data(payload) : 0n,
            fault_id: anyId,
          }),
        };
      },
      () => {
        // The vIOMMU's cache invalidation with a random array (mock entries or SMMUv3 commands).
        const selftest = this.chance(smmu ? 0.1 : 0.9);
        const size = selftest
          ? structs.iommu_viommu_invalidate_selftest.sizeof
          : structs.iommu_viommu_arm_smmuv3_invalidate.sizeof;
        const count = this.pick([0, 1, 2, 3, this.int(8), this.int(8), 64, 70]);
        // A third of the arrays hold only commands the conversion takes (TLBIs need no vSID).
        const convertible = this.chance(0.3);
        const entryLen = this.chance(0.8) ? size : this.pick([8, size + 1, 24, 1, 0, 4096]);
        const array = new Uint8Array(Math.min(count * Math.max(entryLen, size), 2000));
        for (let i = 0; i + size <= array.length; i += Math.max(entryLen, size)) {
          const vsid = Number(BigInt.asUintN(32, virtId()));
          array.set(
            selftest
              ? structs.iommu_viommu_invalidate_selftest.encode({
                  flags: this.pick([0, 0, IOMMU_TEST_INVALIDATE_FLAG_ALL, 2, this.int(2 ** 32)]),
                  vdev_id: vsid,
                  cache_id: this.int(6),
                })
              : this.smmuCommand(vsid, convertible),
            i,
          );
        }
        proc.writeMemory(scratch + 6000n, array);
        return {
          request: IOMMU_HWPT_INVALIDATE,
          name: 'iommu_hwpt_invalidate' as StructName,
          bytes: structs.iommu_hwpt_invalidate.encode({
            size: 32,
            hwpt_id: this.chance(0.85) || onViommu.length === 0 ? viommuId : this.pick(onViommu).id,
            data_uptr: this.chance(0.95) ? scratch + 6000n : 0n,
            data_type: this.chance(0.85)
              ? selftest
                ? IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST
                : IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3
              : this.pick([0, 2, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID]),
            entry_len: entryLen,
            entry_num: count,
          }),
        };
      },
      () => {
        // DESTROY aimed at the vIOMMU family, devices' test objects and tombstones.
        const family = objects.filter((o) =>
          ['VIOMMU', 'VDEVICE', 'VEVENTQ', 'HW_QUEUE', 'SELFTEST', 'HWPT_NESTED'].includes(o.type),
        );
        const tombstones = objects.filter((o) => o.state === 'tombstone');
        return {
          request: IOMMU_DESTROY,
          name: 'iommu_destroy' as StructName,
          bytes: structs.iommu_destroy.encode({
            size: 8,
            id: this.chance(0.2) ? idOf(tombstones) : idOf(family),
          }),
        };
      },
    ];
    // The vIOMMU test ops: events, device caches, attaching to a vIOMMU's nested HWPT.
    const selftestViommu: (() => Call)[] = [
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_TRIGGER_VEVENT,
          trigger_vevent: { dev_id: this.chance(0.5) ? idOf(vmasters) : devId },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_DEV_CHECK_CACHE,
          id: devId,
          check_dev_cache: {
            id: this.int(5),
            cache: this.pick([0, 0xbaddad, this.int(2 ** 32)]),
          },
        }),
      () =>
        t({
          size: 72,
          op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
          id: idOf(stdevs),
          mock_domain_replace: { pt_id: idOf(onViommu) },
        }),
    ];
    const smmuOnly: (() => Call)[] = [
      // Either device's fd: bind, attach (to a vIOMMU's nested HWPT mostly), detach.
      () => ({
        request: VFIO_DEVICE_BIND_IOMMUFD,
        name: 'vfio_device_bind_iommufd' as StructName,
        bytes: structs.vfio_device_bind_iommufd.encode({ argsz: 24, iommufd: fd }),
        fd: this.pick(vfioFds.length > 0 ? vfioFds : [3]),
      }),
      () => ({
        request: VFIO_DEVICE_ATTACH_IOMMUFD_PT,
        name: 'vfio_device_attach_iommufd_pt' as StructName,
        bytes: structs.vfio_device_attach_iommufd_pt.encode({ argsz: 16, pt_id: idOf(onViommu) }),
        fd: this.pick(vfioFds.length > 0 ? vfioFds : [3]),
      }),
      () => ({
        request: VFIO_DEVICE_DETACH_IOMMUFD_PT,
        name: 'vfio_device_detach_iommufd_pt' as StructName,
        bytes: structs.vfio_device_detach_iommufd_pt.encode({ argsz: 12, flags: 0 }),
        fd: this.pick(vfioFds.length > 0 ? vfioFds : [3]),
      }),
    ];
    const call: Call = this.pick(
      this.chance(0.5)
        ? [...viommuCalls, ...(smmu ? smmuOnly : selftestViommu)]
        : [...common, ...(smmu ? [] : selftestOnly)],
    )();
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
    return { request: call.request, bytes: call.bytes, fd: call.fd };
  }

  /** A guest vSTE: mostly valid (V, Config abort / bypass / stage-1, allowed bits), sometimes not. */
  vste(): Uint8Array {
    const config = this.pick([0n, 4n, 5n, 5n, 5n, 6n, BigInt(this.int(8))]);
    let w0 = (this.chance(0.9) ? 1n : 0n) | (config << 1n);
    if (config === 5n) {
      // S1ContextPtr at a GPA of guest RAM (or past it), S1CDMax now and then.
      w0 |= BigInt(this.int(48)) * PAGE;
      if (this.chance(0.2)) w0 |= BigInt(this.int(32)) << 59n;
    }
    if (this.chance(0.1)) w0 |= 1n << BigInt(this.int(64));
    let w1 = 0n;
    if (this.chance(0.3)) w1 = BigInt(this.int(256)) | (BigInt(this.int(4)) << 28n);
    if (this.chance(0.05)) w1 |= 1n << BigInt(this.int(64));
    return structs.iommu_hwpt_arm_smmuv3.encode({ ste: [w0, BigInt.asUintN(64, w1)] });
  }

  /** A guest SMMUv3 command: the convertible opcodes, refused ones (CFGI_STE, CMD_SYNC, TLBI_S2_IPA, PRI_RESP) and random ones. */
  smmuCommand(vsid: number, convertible = false): Uint8Array {
    const opcode = convertible
      ? this.pick([0x10, 0x11, 0x12, 0x13, 0x30])
      : this.chance(0.1)
        ? this.int(256)
        : this.pick([0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x30, 0x40, 0x03, 0x46, 0x2a, 0x41]);
    let w0 = BigInt(opcode) | (BigInt(vsid >>> 0) << 32n);
    if (this.chance(0.3)) w0 |= BigInt(this.int(2 ** 24)) << 8n;
    const w1 = this.chance(0.5) ? BigInt(this.int(64)) * PAGE : this.u64();
    return structs.iommu_viommu_arm_smmuv3_invalidate.encode({ cmd: [w0, w1] });
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

/** Whether two reports (plain data: arrays, objects, numbers, bigints, strings) are equal. */
function sameReport(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => sameReport(ra[k], rb[k]));
}

/** A report as text (bigints spelled out), for messages. */
function reportText(report: ContextReport | null): string {
  return JSON.stringify(report, (_key, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

/**
 * The failure that keeps what it did: iopt_unmap_iova_range is not atomic,
 * so a failed IOAS_UNMAP or VFIO UNMAP_DMA may have removed whole areas
 * inside [first, last] (of `ioasId`, or of any IOAS) before the area that
 * stopped it. `before` with the areas `after` lost there removed.
 */
function withUnmapped(
  before: ContextReport,
  after: ContextReport,
  ioasId: number | undefined,
  first: bigint,
  last: bigint,
): ContextReport {
  return {
    ...before,
    ioas: before.ioas.map((x) => {
      const now = after.ioas.find((y) => y.id === x.id);
      if (now === undefined || (ioasId !== undefined && x.id !== ioasId)) return x;
      const kept = (a: { iova: bigint; last: bigint }) =>
        a.iova < first ||
        a.last > last ||
        now.areas.some((b) => b.iova === a.iova && b.last === a.last);
      return { ...x, areas: x.areas.filter(kept) };
    }),
  };
}

/** Where a failed unmap request may have removed areas: [its IOAS (any for VFIO), first, last]. */
function unmapRange(
  request: number,
  bytes: Uint8Array,
): [number | undefined, bigint, bigint] | undefined {
  if (bytes.length < 24 || (request !== IOMMU_IOAS_UNMAP && request !== VFIO_IOMMU_UNMAP_DMA)) {
    return undefined;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const iova = view.getBigUint64(8, true);
  const last = iova + view.getBigUint64(16, true) - 1n;
  if (request === IOMMU_IOAS_UNMAP) return [view.getUint32(4, true), iova, last];
  // VFIO_DMA_UNMAP_FLAG_ALL (bit 1) unmaps everything of the compat IOAS.
  return (view.getUint32(4, true) & 2) !== 0 ? [undefined, 0n, MAX] : [undefined, iova, last];
}

/**
 * What is wrong with the vIOMMU object graph of one context: every live
 * vIOMMU-family object listed once under a live vIOMMU, virt_ids unique per
 * vIOMMU, at most one vDEVICE per device, HW queue indexes 0..n-1, one
 * vEVENTQ per type, no more events waiting than the depth; and every users
 * count equal to what the graph says holds the object (a vIOMMU: its
 * vDEVICEs, nested HWPTs, vEVENTQs, HW queues and mappings; a HWPT: its
 * attachments, the nested HWPTs and vIOMMUs on it; a HW queue: the queue
 * after it; a vEVENTQ: its fd; a device: its binding and its vDEVICE;
 * nothing holds a vDEVICE).
 */
function graphProblems(r: ContextReport, veventqFds: ReadonlyMap<number, number>): string[] {
  const problems: string[] = [];
  const users = new Map(r.objects.map((o) => [o.id, o.users]));
  const expectUsers = (id: number, want: number, why: string): void => {
    const got = users.get(id);
    if (got !== want) problems.push(`object ${id} has users ${got}, but ${why} make ${want}`);
  };
  const listed = (type: string, ids: number[]): void => {
    const live = r.objects.filter((o) => o.type === type && o.state === 'live').map((o) => o.id);
    const want = live.sort((a, b) => a - b).join();
    const got = ids.sort((a, b) => a - b).join();
    if (want !== got) problems.push(`live ${type} objects [${want}], the vIOMMUs list [${got}]`);
  };
  listed(
    'VIOMMU',
    r.viommus.map((v) => v.id),
  );
  listed(
    'VDEVICE',
    r.viommus.flatMap((v) => v.vdevices.map((d) => d.id)),
  );
  listed(
    'VEVENTQ',
    r.viommus.flatMap((v) => v.veventqs.map((q) => q.id)),
  );
  listed(
    'HW_QUEUE',
    r.viommus.flatMap((v) => v.hwQueues.map((q) => q.id)),
  );
  const vdeviceOf = new Map<string, number>();
  const withFd = new Set(veventqFds.values());
  // Who holds each HWPT and vIOMMU, counted once (the graph has hundreds of objects in long runs).
  const count = new Map<string, number>();
  const add = (key: string): void => {
    count.set(key, (count.get(key) ?? 0) + 1);
  };
  for (const d of r.devices) for (const a of d.attachments) add(`attached ${a.hwpt}`);
  for (const h of r.hwpts) add(h.viommu === 0 ? `child of ${h.parent}` : `nested on ${h.viommu}`);
  for (const v of r.viommus) add(`vIOMMU on ${v.parent}`);
  const live = new Set(r.viommus.map((v) => v.id));
  for (const v of r.viommus) {
    if (new Set(v.vdevices.map((d) => d.virtId)).size !== v.vdevices.length) {
      problems.push(`vIOMMU ${v.id} has a virt_id twice`);
    }
    for (const d of v.vdevices) {
      const other = vdeviceOf.get(d.device);
      if (other !== undefined) problems.push(`${d.device} has vDEVICEs ${other} and ${d.id}`);
      vdeviceOf.set(d.device, d.id);
      expectUsers(d.id, 0, 'no holders');
    }
    const indexes = v.hwQueues.map((q) => q.index).sort((a, b) => a - b);
    if (indexes.some((x, i) => x !== i)) {
      problems.push(`vIOMMU ${v.id} has HW queue indexes [${indexes.join()}]`);
    }
    for (const q of v.hwQueues) {
      expectUsers(q.id, indexes.includes(q.index + 1) ? 1 : 0, 'the queues after it');
    }
    if (new Set(v.veventqs.map((q) => q.type)).size !== v.veventqs.length) {
      problems.push(`vIOMMU ${v.id} has two vEVENTQs of one type`);
    }
    for (const q of v.veventqs) {
      if (q.pending > q.depth) problems.push(`vEVENTQ ${q.id} holds ${q.pending} > ${q.depth}`);
      expectUsers(q.id, withFd.has(q.id) ? 1 : 0, 'its fd');
    }
    const nested = count.get(`nested on ${v.id}`) ?? 0;
    const mapped = v.mmap?.mappings ?? 0;
    expectUsers(
      v.id,
      v.vdevices.length + nested + v.veventqs.length + v.hwQueues.length + mapped,
      `${v.vdevices.length} vDEVICEs, ${nested} nested HWPTs, ${v.veventqs.length} vEVENTQs, ${v.hwQueues.length} HW queues and ${mapped} mappings`,
    );
  }
  for (const h of r.hwpts) {
    if (h.viommu !== 0 && !live.has(h.viommu)) {
      problems.push(`HWPT ${h.id} is on vIOMMU ${h.viommu}, which is not live`);
    }
    const attached = count.get(`attached ${h.id}`) ?? 0;
    const children = count.get(`child of ${h.id}`) ?? 0;
    const viommus = count.get(`vIOMMU on ${h.id}`) ?? 0;
    expectUsers(
      h.id,
      attached + children + viommus,
      `${attached} attachments, ${children} nested HWPTs and ${viommus} vIOMMUs`,
    );
  }
  for (const d of r.devices) {
    expectUsers(d.id, vdeviceOf.has(d.name) ? 2 : 1, 'its binding and vDEVICE');
  }
  return problems;
}

/**
 * What is wrong with one step's change of a context: a tombstone stays one
 * until the context closes; a vDEVICE that left its vIOMMU is a tombstone
 * when its device was unbound in the step, and gone otherwise.
 */
function transitionProblems(before: ContextReport, after: ContextReport): string[] {
  const problems: string[] = [];
  const now = new Map(after.objects.map((o) => [o.id, o]));
  for (const o of before.objects) {
    if (o.state === 'tombstone' && now.get(o.id)?.state !== 'tombstone') {
      problems.push(`tombstone ${o.id} became ${now.get(o.id)?.state ?? 'free'}`);
    }
  }
  const bound = new Set(after.devices.map((d) => d.name));
  const liveVdevices = new Set(after.viommus.flatMap((v) => v.vdevices.map((d) => d.id)));
  for (const d of before.viommus.flatMap((v) => v.vdevices)) {
    if (liveVdevices.has(d.id)) continue;
    const state = now.get(d.id)?.state ?? 'free';
    const want = bound.has(d.device) ? 'free' : 'tombstone';
    if (state !== want) {
      problems.push(`vDEVICE ${d.id} of ${d.device} went away and is ${state}, not ${want}`);
    }
  }
  return problems;
}

/** The items of a vEVENTQ read: {flags, seq} each, or what is malformed. */
function veventItems(
  bytes: Uint8Array,
  payload: number,
): { flags: number; seq: number }[] | string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const items: { flags: number; seq: number }[] = [];
  for (let at = 0; at < bytes.length; ) {
    if (at + 8 > bytes.length) return `a partial header at ${at}`;
    const flags = view.getUint32(at, true);
    const seq = view.getUint32(at + 4, true);
    if ((flags & ~IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0) return `flags 0x${flags.toString(16)}`;
    const size = flags === IOMMU_VEVENTQ_FLAG_LOST_EVENTS ? 8 : 8 + payload;
    if (at + size > bytes.length) return `a partial item at ${at}`;
    items.push({ flags, seq });
    at += size;
  }
  return items;
}

/** What runs reached, by `what:outcome` ('ok' or an errno name): a fuzzer that misses its targets fails. */
type Tally = Map<string, number>;

/** The name a tally gives an ioctl: the request's name, the vIOMMU ones by their target. */
function callName(request: number, bytes: Uint8Array, before: ContextReport | null): string {
  const name = ioctlByRequest(request)?.name ?? 'unknown';
  if (bytes.length < (request === IOMMU_DESTROY ? 8 : 16)) return name;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const typeOf = (id: number) => before?.objects.find((o) => o.id === id)?.type ?? 'nothing';
  if (request === IOMMU_TEST_CMD) return TEST_OP_MEMBER[view.getUint32(4, true)] ?? name;
  if (request === IOMMU_DESTROY) return `${name} ${typeOf(view.getUint32(4, true))}`;
  if (request === IOMMU_HWPT_INVALIDATE) return `${name} ${typeOf(view.getUint32(4, true))}`;
  if (request === IOMMU_HWPT_ALLOC) return `${name} on ${typeOf(view.getUint32(12, true))}`;
  return name;
}

/** What the vIOMMU side of a default-length run must reach, in both worlds and in each. */
const TARGETS: Record<'both' | WorldKind, readonly string[]> = {
  both: [
    ...['ok', 'EOPNOTSUPP', 'ENOENT', 'EINVAL'].map((e) => `IOMMU_VIOMMU_ALLOC:${e}`),
    ...['ok', 'EEXIST', 'ENOENT', 'EINVAL'].map((e) => `IOMMU_VDEVICE_ALLOC:${e}`),
    ...['ok', 'EEXIST', 'EINVAL', 'EOPNOTSUPP'].map((e) => `IOMMU_VEVENTQ_ALLOC:${e}`),
    ...['ok', 'EEXIST', 'EIO', 'EINVAL', 'ENOENT', 'EOVERFLOW'].map(
      (e) => `IOMMU_HW_QUEUE_ALLOC:${e}`,
    ),
    'IOMMU_HWPT_ALLOC on VIOMMU:ok',
    'IOMMU_HWPT_INVALIDATE VIOMMU:ok',
    'IOMMU_HWPT_INVALIDATE VIOMMU:EINVAL',
    ...['VIOMMU', 'HW_QUEUE'].flatMap((t) => [`IOMMU_DESTROY ${t}:ok`, `IOMMU_DESTROY ${t}:EBUSY`]),
    'IOMMU_DESTROY VDEVICE:ok',
    'IOMMU_DESTROY VDEVICE:ENOENT',
    'IOMMU_DESTROY VEVENTQ:EBUSY',
    'mmap:ok',
    'mmap:ENXIO',
    'tombstone',
    'vEVENT read',
    'LOST_EVENTS read',
  ],
  selftest: ['trigger_vevent:ok', 'check_dev_cache:ok', 'IOMMU_DESTROY SELFTEST:ok'],
  smmuv3: [
    'IOMMU_HWPT_INVALIDATE VIOMMU:EIO',
    'IOMMU_VIOMMU_ALLOC:ENOSPC',
    'DMA fault forwarded',
    'VFIO_DEVICE_BIND_IOMMUFD:ok',
  ],
};

/** Fuzz `kind` with every seed; a run at least as long as the default must reach the targets. */
function fuzzAll(kind: WorldKind): void {
  const seen: Tally = new Map();
  let calls = 0;
  for (const seed of SEEDS) calls += fuzz(kind, seed, seen);
  expect(calls).toBe(SEEDS.length * CALLS);
  if (SEEDS.length * CALLS >= 10_000) {
    const missed = [...TARGETS.both, ...TARGETS[kind]].filter((t) => !seen.has(t));
    expect(missed, `reached: ${[...seen.keys()].sort().join(', ')}`).toEqual([]);
  }
}

/** One fuzz run: every call's result checked, then everything closed; what it reached goes to `seen`. */
function fuzz(kind: WorldKind, seed: number, seen: Tally): number {
  const world = buildWorld(kind);
  const { host, proc } = world;
  const tally = (key: string): void => {
    seen.set(key, (seen.get(key) ?? 0) + 1);
  };
  populate(world);
  const gen = new Gen(prng(seed), world);
  const fdOf = (k: string): number | undefined => proc.openFiles().find((f) => f.kind === k)?.fd;
  const fdsOf = (k: string): number[] =>
    proc
      .openFiles()
      .filter((f) => f.kind === k)
      .map((f) => f.fd);
  const report = (): ContextReport | null => {
    const fd = fdOf('iommufd');
    return fd === undefined ? null : proc.inspect(fd);
  };
  let step = 0;
  const check = (ok: boolean, what: () => string): void => {
    if (!ok) throw new Error(`${kind} seed ${seed} step ${step}: ${what()}`);
  };
  /** A call's answer: >= 0, or a known -errno whose reason the process recorded during the call. */
  const answered = (rc: number, serial: number, what: () => string): void => {
    check(Number.isInteger(rc) && host.internalErrors === 0, () => `${what()} = ${rc}`);
    if (rc >= 0) return;
    const last = proc.lastError();
    check(
      errnoName(-rc) !== undefined &&
        proc.errorSerial > serial &&
        last?.errno === -rc &&
        last.reason.length > 0,
      () => `${what()} = ${rc} without its reason; last error ${JSON.stringify(last)}`,
    );
  };
  /** The graph invariants now, and across the step from `before`. */
  const consistent = (before: ContextReport | null, what: () => string): ContextReport | null => {
    const after = report();
    if (after === null) return null;
    const problems = graphProblems(after, world.veventqFds);
    if (before !== null) problems.push(...transitionProblems(before, after));
    const tombstones = (r: ContextReport | null) =>
      r?.objects.filter((o) => o.state === 'tombstone').length ?? 0;
    if (tombstones(after) > tombstones(before)) tally('tombstone');
    check(problems.length === 0, () => `after ${what()}: ${problems.join('; ')}`);
    return after;
  };
  const close = (fd: number): void => {
    check(proc.close(fd) === 0, () => `close(${fd})`);
    world.veventqFds.delete(fd);
    world.lastSeq.delete(fd);
  };

  let calls = 0;
  for (step = 0; step < CALLS; step++) {
    let before = report();
    // Now and then close something (on the SMMUv3 host a device node more often: its device is
    // unbound, its vDEVICE a tombstone); a closed /dev/iommu comes back populated.
    const vfios = fdsOf('vfio');
    const victim = gen.chance(0.003)
      ? gen.pick(proc.openFiles()).fd
      : kind === 'smmuv3' && vfios.length > 0 && gen.chance(0.004)
        ? gen.pick(vfios)
        : undefined;
    if (victim !== undefined) {
      close(victim);
      before = consistent(before, () => `close(${victim})`);
    }
    if (fdOf('iommufd') === undefined) {
      populate(world);
      before = report();
    }
    // A device node comes back, unbound (either node: a second fd of a bound device fails to bind).
    if (kind === 'smmuv3' && vfios.length < SMMU_DEVICES.length && gen.chance(0.02)) {
      proc.open(host.device(gen.pick(SMMU_DEVICES))?.path ?? '');
    }

    // read / write / poll on any fd (fault and vEVENTQ fds among them) with random counts and contents.
    if (gen.chance(0.05)) {
      const open = proc.openFiles();
      const veventqs = fdsOf('veventq');
      const target =
        veventqs.length > 0 && gen.chance(0.4)
          ? gen.pick(veventqs)
          : gen.chance(0.9)
            ? (open[gen.int(open.length)]?.fd ?? 3)
            : gen.int(12) - 1;
      const buffer = new Uint8Array(gen.pick([0, 7, 8, 12, 16, 24, 40, 48, 80, 39, gen.int(200)]));
      for (let i = 0; i < buffer.length; i++) buffer[i] = gen.chance(0.7) ? 0 : gen.int(256);
      if (buffer.length >= 8 && gen.chance(0.5)) buffer[0] = 1 + gen.int(3); // a plausible cookie
      const pos = gen.chance(0.9) ? 0 : 1;
      const serial = proc.errorSerial;
      const how = gen.chance(0.5) ? 'read' : gen.chance(0.8) ? 'write' : 'poll';
      const rc =
        how === 'read'
          ? proc.read(target, buffer, pos)
          : how === 'write'
            ? proc.write(target, buffer, pos)
            : proc.poll(target);
      answered(rc, serial, () => `${how}(${target}, ${buffer.length}, ${pos})`);
      const queueId = world.veventqFds.get(target);
      const queue = before?.viommus.flatMap((v) => v.veventqs).find((q) => q.id === queueId);
      if (queue !== undefined && how === 'poll' && queue.pending > 0) {
        check((rc & 1) === 1, () => `poll(${target}) = ${rc} with ${queue.pending} events waiting`);
      }
      if (queue !== undefined && how === 'read' && rc > 0) {
        // Whole items only, sequence numbers rising across reads.
        const record = veventRecordSize(queue.type);
        const items = veventItems(buffer.subarray(0, rc), record === undefined ? 0 : record - 8);
        check(typeof items !== 'string', () => `read(${target}) returned ${items}`);
        for (const item of items as { flags: number; seq: number }[]) {
          tally(item.flags === 0 ? 'vEVENT read' : 'LOST_EVENTS read');
          const last = world.lastSeq.get(target) ?? -1;
          check(item.seq > last, () => `read(${target}): seq ${item.seq} after ${last}`);
          world.lastSeq.set(target, item.seq);
        }
      }
      before = consistent(before, () => `${how}(${target})`);
    }

    // mmap a random offset and length of the iommufd (or another fd), or munmap part of a mapping.
    if (gen.chance(0.02)) {
      const regions = (before?.viommus ?? []).flatMap((v) => (v.mmap === null ? [] : [v.mmap]));
      const region = regions.length > 0 ? gen.pick(regions) : { offset: 0n, length: 8192 };
      const rlen = BigInt(region.length);
      const offset = gen.pick([
        region.offset,
        region.offset,
        region.offset + PAGE,
        region.offset + 2n * PAGE,
        region.offset + 1n + BigInt(gen.int(4095)),
        BigInt(gen.int(64)) * PAGE,
        gen.u64() & ~4095n,
      ]);
      const length = gen.pick([rlen, rlen, rlen / 2n, 2n * rlen, rlen - 1n, PAGE, 1n, 0n]);
      const target = gen.chance(0.9)
        ? (fdOf('iommufd') ?? 3)
        : (proc.openFiles()[gen.int(proc.openFiles().length)]?.fd ?? 3);
      const serial = proc.errorSerial;
      const va = proc.mmap(length, { fd: target, offset });
      const what = () => `mmap(${length}, fd ${target}, offset 0x${offset.toString(16)})`;
      const rounded = ((length + PAGE - 1n) / PAGE) * PAGE;
      if (va >= 0n) world.mappings.push({ va, length: rounded });
      else answered(Number(va), serial, what);
      if (target === fdOf('iommufd')) {
        // mmap(2) refuses length 0 and an unaligned offset; the driver maps a live region at
        // exactly its offset and (page-rounded) length, and nothing else.
        const exact = regions.some((r) => r.offset === offset && BigInt(r.length) === rounded);
        const want = length === 0n || offset % PAGE !== 0n ? -EINVAL : exact ? 0 : -ENXIO;
        check(want === 0 ? va > 0n : va === BigInt(want), () => `${what()} = ${va}, not ${want}`);
      }
      tally(`mmap:${va >= 0n ? 'ok' : errnoName(-Number(va))}`);
      before = consistent(before, what);
    }
    if (world.mappings.length > 0 && gen.chance(0.015)) {
      const i = gen.int(world.mappings.length);
      const m = world.mappings[i] as { va: bigint; length: bigint };
      const part = m.length > PAGE ? gen.int(3) : 0;
      // The whole mapping, its first page, or its last page.
      const [va, length] =
        part === 0 ? [m.va, m.length] : part === 1 ? [m.va, PAGE] : [m.va + m.length - PAGE, PAGE];
      check(proc.munmap(va, length) === 0, () => `munmap(0x${va.toString(16)}, ${length})`);
      if (part === 0) world.mappings.splice(i, 1);
      else world.mappings[i] = { va: part === 1 ? m.va + PAGE : m.va, length: m.length - PAGE };
      before = consistent(before, () => `munmap(0x${va.toString(16)}, ${length})`);
    }

    // Device DMA on the SMMUv3 host: stage-1 faults of an attached vDEVICE go to a vEVENTQ.
    if (kind === 'smmuv3' && gen.chance(0.05)) {
      const name = gen.chance(0.75) ? SMMU_DEVICES[0] : SMMU_DEVICES[1];
      const iova = gen.pick([
        BigInt(gen.int(Number(GUEST_RAM_PAGES))) * PAGE + BigInt(gen.int(4096)),
        (GUEST_RAM_PAGES + BigInt(gen.int(64))) * PAGE,
        gen.u64() & 0xffff_ffff_ffffn,
      ]);
      const length = gen.pick([4, 8, 64, 4096]);
      const what = () => `DMA of ${name} at 0x${iova.toString(16)}`;
      try {
        host.deviceDma(
          name,
          gen.chance(0.3) ? { iova, data: new Uint8Array(length) } : { iova, length },
        );
      } catch (e) {
        check(false, () => `${what()} threw ${String(e)}`);
      }
      check(host.internalErrors === 0, () => `${what()}: internal error`);
      const waiting = (r: ContextReport | null) =>
        r?.viommus.reduce((n, v) => n + v.veventqs.reduce((m, q) => m + q.queued, 0), 0) ?? 0;
      const queuedBefore = waiting(before);
      before = consistent(before, what);
      if (waiting(before) > queuedBefore) tally('DMA fault forwarded');
    }

    const planned = gen.chance(0.5) ? gen.plausible(before) : undefined;
    const request = planned?.request ?? gen.request();
    const fds = proc.openFiles();
    const fd = gen.chance(0.85)
      ? (planned?.fd ??
        ((fdOf(request >>> 0 >= 0x3b76 && request <= 0x3b78 ? 'vfio' : 'iommufd') ?? 3) as number))
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

    // DESTROY of a well-formed struct: 0 exactly when the object is live and nothing holds it.
    let destroyWants: number | undefined;
    const iommufd = fdOf('iommufd');
    if (request === IOMMU_DESTROY && fd === iommufd && arg instanceof Uint8Array) {
      const view = new DataView(arg.buffer, arg.byteOffset, arg.length);
      if (arg.length >= 8 && view.getUint32(0, true) === 8) {
        const target = before?.objects.find((o) => o.id === view.getUint32(4, true));
        destroyWants =
          target === undefined || target.state !== 'live' ? -ENOENT : target.users > 0 ? -EBUSY : 0;
      }
    }
    const veventqsBefore = new Set(fdsOf('veventq'));
    // What the kernel reads: the bytes given, or what the address holds (a short payload written
    // there runs into whatever earlier calls left behind).
    const argBytes =
      arg instanceof Uint8Array ? arg : (proc.readMemory(arg, 24) ?? new Uint8Array(0));
    const serial = proc.errorSerial;
    let rc: number;
    try {
      rc = proc.ioctl(fd, request, arg);
    } catch (e) {
      throw new Error(
        `${kind} seed ${seed} step ${step}: ioctl(${fd}, 0x${request.toString(16)}) threw ${String(e)}`,
      );
    }
    calls++;
    const where = () =>
      `ioctl(${fd}, 0x${request.toString(16)}, ${
        arg instanceof Uint8Array
          ? `[${Buffer.from(arg).toString('hex')}]`
          : `0x${arg.toString(16)}`
      }) = ${rc}${rc < 0 ? `; ${JSON.stringify(proc.lastError())}` : ''}`;
    answered(rc, serial, where);
    tally(`${callName(request, argBytes, before)}:${rc >= 0 ? 'ok' : errnoName(-rc)}`);
    if (destroyWants !== undefined) {
      check(rc === destroyWants, () => `DESTROY should answer ${destroyWants}: ${where()}`);
    }
    if (rc < 0 && fdOf('iommufd') === iommufd) {
      // The kernel undoes whatever a failed call began, but for the areas a failed unmap removed.
      const after = report();
      const range = before === null || after === null ? undefined : unmapRange(request, argBytes);
      const expected =
        range === undefined || before === null || after === null
          ? before
          : withUnmapped(before, after, ...range);
      check(
        sameReport(expected, after),
        () =>
          `failed ${where()} changed the context from ${reportText(before)} to ${reportText(after)}`,
      );
      if (!sameReport(before, after)) tally('partial unmap');
    }
    if (rc === 0 && request === IOMMU_VEVENTQ_ALLOC && fd === iommufd) {
      // One new fd and one new VEVENTQ object: remember which holds which.
      const newFds = fdsOf('veventq').filter((f) => !veventqsBefore.has(f));
      const old = new Set(before?.objects.map((o) => o.id));
      const newIds = (report()?.objects ?? [])
        .filter((o) => o.type === 'VEVENTQ' && !old.has(o.id))
        .map((o) => o.id);
      check(
        newFds.length === 1 && newIds.length === 1,
        () => `${where()} made ${newFds} ${newIds}`,
      );
      world.veventqFds.set(newFds[0] as number, newIds[0] as number);
    }
    consistent(before, where);
  }
  for (const f of proc.openFiles()) close(f.fd);
  expect(proc.openFiles()).toEqual([]);
  for (const m of world.mappings.splice(0)) expect(proc.munmap(m.va, m.length)).toBe(0);
  expect(host.pinnedPages(), `${kind} seed ${seed}`).toBe(0);
  // A mapping of an iommufd holds the file: with every fd closed, a fresh context whose vIOMMU
  // page is mapped keeps its objects, and the pages its maps and HW queues pin, until the munmap.
  populate(world);
  for (const f of proc.openFiles()) close(f.fd);
  expect(host.pinnedPages(), `${kind} seed ${seed}: the mapping holds the context`).toBeGreaterThan(
    0,
  );
  for (const m of world.mappings.splice(0)) expect(proc.munmap(m.va, m.length)).toBe(0);
  expect(host.pinnedPages(), `${kind} seed ${seed}`).toBe(0);
  expect(host.internalErrors, `${kind} seed ${seed}`).toBe(0);
  return calls;
}

describe('ioctl fuzz', () => {
  it(
    '1-8, 23, 176-201: on a selftest host with vIOMMU state, random requests, sizes, bytes, ids and argument addresses never throw, always answer >= 0 or a known -errno with its reason, change nothing when they fail (but the areas a failed unmap removed), keep the vIOMMU graph consistent, and once every fd is closed and every mapping gone nothing stays pinned',
    () => {
      fuzzAll('selftest');
    },
    TIMEOUT,
  );

  it(
    '176-201 on SMMUv3: ARM_SMMUV3 and TEGRA241_CMDQV vIOMMUs, guest vSTEs, SMMUv3 command arrays, LVCMDQs, vEVENTQs fed by DMA faults, VFIO devices unbound while they have vDEVICEs: the same invariants',
    () => {
      fuzzAll('smmuv3');
    },
    TIMEOUT,
  );
});
